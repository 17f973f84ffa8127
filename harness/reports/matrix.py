"""The rules x MHD versions table of a matrix run (several --mhd): which
rule holds in which version, per transport, side by side; for a measure
rule, what each version measured."""

import argparse
import html
import json
import os
import pathlib
import sys

from .. import catalog, outcome
from . import interop
from .html_report import STYLE, prose  # one look for both pages

MARK = {"conforms": "ok", "deviates": "DEVIATES", "untested": "-", "measured": "measured"}
VALUE_TEXT = 40  # characters of one measured value in a cell


def build(runs):
    """runs: [(label, prefix, exit status, results or None)]."""
    table = {"runs": [], "rules": {}, "interop": {}}
    for label, prefix, rc, data in runs:
        for client, cell_ in interop.per_client((data or {}).get("cases", [])).items():
            table["interop"].setdefault(client, {})[label] = cell_
        table["runs"].append({"label": label, "prefix": prefix, "exit_status": rc,
                              "mhd_version": (data or {}).get("mhd", {}).get("version"),
                              "totals": (data or {}).get("totals"), "report": f"{label}/report.html"})
        for rule, entry in ((data or {}).get("rules") or {}).items():
            table["rules"].setdefault(rule, {})[label] = {
                "verdict": entry["verdict"], "by_transport": entry.get("by_transport", {}),
                "state": entry.get("state") or {"deviates": "known"}.get(entry["verdict"], entry["verdict"]),
                **({"failure_rate": entry["failure_rate"]} if entry.get("failure_rate") else {}),
                **({"values": _values(entry["observed"])} if entry.get("kind") == "measure" and entry.get("observed")
                   else {})}
    return table


def _values(observed):
    """The distinct values a measure rule's cases observed, most common
    first, each as short text."""
    texts = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in observed.values()]
    return sorted(set(texts), key=lambda t: (-texts.count(t), t))


def cell(entry):
    """One rule in one version: what it measured, for a measure; else the
    verdict, per transport when they differ."""
    if not entry:
        return "not run"
    if entry.get("values") and entry["verdict"] != "deviates":
        shown = [v if len(v) <= VALUE_TEXT else v[:VALUE_TEXT - 3] + "..." for v in entry["values"][:2]]
        more = len(entry["values"]) - len(shown)
        return " | ".join(shown) + (f" (+{more} more values)" if more > 0 else "")
    tested = {t: v for t, v in entry["by_transport"].items() if v != "untested"}
    if len(set(tested.values())) > 1:
        text = ", ".join(f"{t} {MARK[v]}" for t, v in sorted(tested.items()))
    else:
        text = MARK[entry["verdict"]]
    rate = entry.get("failure_rate")
    if rate and rate.get("failures"):
        text += f" ({rate['failures']}/{rate['attempts']})"
    return text


def _rows(table):
    labels = [r["label"] for r in table["runs"]]
    for rule in sorted(table["rules"], key=catalog.sort_key):
        if all(e["verdict"] == "untested" for e in table["rules"][rule].values()):
            continue  # not selected in this matrix
        cells = [cell(table["rules"][rule].get(label)) for label in labels]
        changed = len(set(cells)) > 1
        yield rule, cells, changed


def text(table):
    labels = [r["label"] for r in table["runs"]]
    width = max([len(c) for _, cells, _ in _rows(table) for c in cells] + [len(x) for x in labels] + [8])
    lines = [f"{'rule':<12} " + " ".join(f"{x:<{width}}" for x in labels)]
    for rule, cells, changed in _rows(table):
        lines.append(f"{rule:<12} " + " ".join(f"{c:<{width}}" for c in cells) + ("  <- differs" if changed else ""))
    lines.append(f"{'exit status':<12} " + " ".join(f"{r['exit_status']:<{width}}" for r in table["runs"]))
    return "\n".join(lines)


def markdown(table):
    labels = [r["label"] for r in table["runs"]]
    lines = ["# Upgrade conformance across MHD versions", "",
             "| Rule | " + " | ".join(f"MHD {x}" for x in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for rule, cells, changed in _rows(table):
        name = f"**{rule}**" if changed else rule
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Rules in bold differ between versions. Per run: " + "; ".join(
        f"{r['label']} ({r['prefix'] or 'system'}): exit status {r['exit_status']}" for r in table["runs"])]
    if table.get("interop"):
        lines += ["", "## Real clients (U-WS-6)", "", "Each cell: the state of that client's cases in that version "
                  "(every mode and transport), and how many of them conform.", "",
                  "| Client | " + " | ".join(f"MHD {x}" for x in labels) + " |", "|---|" + "---|" * len(labels)]
        for client, by in table["interop"].items():
            lines.append(f"| {client} | " + " | ".join(interop.cell_text(by[x]) if x in by else "not run"
                                                      for x in labels) + " |")
    return "\n".join(lines) + "\n"


PROMISE_TEXT = 110  # characters of a rule's promise in matrix.html (all of it on hover)


def html_page(table):
    """matrix.html: the same table in colours, each rule with its promise,
    each cell linking to that version's report.html at the rule."""
    labels = [r["label"] for r in table["runs"]]
    reports = {r["label"]: r.get("report") or f"{r['label']}/report.html" for r in table["runs"]}
    rules = {r.id: r for r in catalog.load().values()}
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>Upgrade conformance across MHD versions</title>", f"<style>{STYLE}</style></head><body>",
           "<h1>Upgrade conformance across MHD versions</h1>",
           "<p>Each row is a rule of MHD's upgrade API, as the manual promises it; each column an MHD version. A "
           "cell says whether that version keeps the promise, over every mode and transport that ran (per "
           "transport where they differ), and leads to that version's report at the rule. Rules in bold differ "
           "between versions; a measure rule's cell shows the values it measured.</p>",
           '<p class=legend>' + "".join(f'<span class="s s-{k}">{sym}</span>{html.escape(words)}'
                                        for k, (sym, words) in outcome.STATES.items()) + "</p>",
           "<p>" + "; ".join(f'<a href="{html.escape(reports[r["label"]])}">MHD {html.escape(r["label"])}</a> '
                             f"({html.escape(r['prefix'] or 'system')}): exit status {r['exit_status']}"
                             for r in table["runs"]) + "</p>",
           '<div class="wrap"><table class="matrix versions"><tr><th class="rule">rule</th><th>promise</th>']
    out += [f"<th>MHD {html.escape(x)}</th>" for x in labels]
    out.append("</tr>")
    for rule, cells, changed in _rows(table):
        promise = rules[rule].promise if rule in rules else ""
        short = promise if len(promise) <= PROMISE_TEXT else promise[:PROMISE_TEXT - 3] + "..."
        out.append(f'<tr data-rule="{rule}"><th class="rule">{"<b>" + rule + "</b>" if changed else rule}</th>'
                   f'<td class="promise" title="{html.escape(promise)}">{prose(short)}</td>')
        for label, text in zip(labels, cells):
            entry = table["rules"][rule].get(label)
            key = entry["state"] if entry and entry.get("state") in outcome.STATES else "untested"
            symbol, words = outcome.STATES[key]
            out.append(f'<td class="cell s-{key}" data-state="{key}" title="{html.escape(words)}">'
                       f'<a href="{html.escape(reports[label])}#rule-{rule}">{symbol} {html.escape(text)}</a></td>')
        out.append("</tr>")
    out.append("</table></div>")
    if table.get("interop"):
        out += ['<h2 id="interop">Real clients (U-WS-6)</h2>', '<table class="matrix interop"><tr><th class="rule">'
                "client</th>"] + [f"<th>MHD {html.escape(x)}</th>" for x in labels] + ["</tr>"]
        for client, by in table["interop"].items():
            out.append(f'<tr data-client="{html.escape(client)}"><th class="rule">{html.escape(client)}</th>')
            for label in labels:
                c = by.get(label)
                if c is None:
                    out.append("<td class=none>not run</td>")
                    continue
                out.append(f'<td class="cell s-{c["state"]}" title="{html.escape(outcome.STATES[c["state"]][1])}">'
                           f'<a href="{html.escape(reports[label])}#interop">{html.escape(interop.cell_text(c))}'
                           "</a></td>")
            out.append("</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(folder, table):
    """matrix.json, matrix.md and matrix.html into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "matrix.json").write_text(json.dumps(table, indent=1) + "\n")
    (folder / "matrix.md").write_text(markdown(table))
    (folder / "matrix.html").write_text(html_page(table))


def main(argv):
    """./conformance matrix RUN [RUN ...]: the table of runs that exist."""
    from . import results  # the one reader of a run's results.json
    p = argparse.ArgumentParser(prog="conformance matrix",
                                description="The rules x MHD versions table of runs that already exist (one "
                                            "results.json, or its report folder, per version): matrix.md, "
                                            "matrix.html and matrix.json, as a run with several --mhd writes them. "
                                            "Exit status: 0 written, 2 a run cannot be read.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="a run's results.json or report folder")
    p.add_argument("--report", metavar="DIR",
                   help="where to write the table (default: the folder that holds the runs' folders)")
    args = p.parse_args(argv)
    runs = []
    for given in args.runs:
        try:
            path, data = results.read(given)
        except results.Unreadable as e:
            print(f"conformance matrix: {e}", file=sys.stderr)
            return 2
        runs.append((path, data))
    folder = pathlib.Path(args.report or os.path.commonpath([str(path.parent.parent) for path, _ in runs]))
    rows, labels = [], []
    for path, data in runs:
        version = (data.get("mhd") or {}).get("version") or path.parent.name
        label = version if version not in labels else f"{version}-{len(labels) + 1}"
        labels.append(label)
        rc = 0 if (data.get("gate") or {}).get("passed") else 1
        rows.append((label, (data.get("mhd") or {}).get("prefix"), rc, data))
    table = build(rows)
    for run, (path, _) in zip(table["runs"], runs):
        run["report"] = os.path.relpath(path.parent / "report.html", folder)
    write(folder, table)
    print(text(table))
    print(f"matrix: {folder / 'matrix.md'}, matrix.html, matrix.json")
    return 0
