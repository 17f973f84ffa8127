"""report.html: one static page (no external assets) per run: the rule x
mode x transport matrix in colours, each cell linking to its cases'
details (what was expected and seen, the bytes exchanged, the server's
events). The counts carry data-count attributes, so that a test can read
them back from the rendered page."""

import html
import json

from . import modes

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 2px 6px; text-align: center; }
table.matrix th.rule { text-align: left; }
.conforms { background: #c8e6c9; } .deviates { background: #ffcdd2; }
.known { background: #ffe0b2; } .untested { background: #eeeeee; } .measured { background: #e3f2fd; }
.swatch { display: inline-block; width: 1em; margin: 0 .3em 0 1em; }
td a { color: inherit; text-decoration: none; display: block; }
details.case { margin: .3em 0; } details.case summary { cursor: pointer; }
details.case pre { background: #f6f6f6; padding: .5em; overflow-x: auto; max-height: 30em; }
.failed, .error, .unrecorded { color: #b71c1c; font-weight: bold; } .expected-deviation { color: #e65100; }
.mutant { background: #fff3cd; border: 2px solid #b71c1c; padding: .5em; }
"""
# Cell classes: the verdict, with deviations the baseline expects apart.
LEGEND = [("conforms", "conforms"), ("deviates", "fails the gate: not as the baseline says"),
          ("known", "deviates, as the baseline expects"), ("measured", "measured, nothing recorded to compare"),
          ("untested", "untested (skipped or error)")]


def _cell_class(cases):
    verdicts = {c["verdict"] for c in cases}
    if any(c["outcome"] in ("failed", "unrecorded") for c in cases):
        return "deviates"  # the gate fails here
    if "deviates" in verdicts:
        return "known"
    if "conforms" in verdicts:
        return "conforms"
    return "measured" if "measured" in verdicts else "untested"


def _columns(cases):
    transports = [t for t in modes.KNOWN_TRANSPORTS if any(c["transport"] == t for c in cases)]
    mode_ids = [m.id for m in modes.MODES]
    cols = [(t, m) for t in transports for m in mode_ids if any(c["transport"] == t and c["mode"] == m
                                                                 for c in cases)]
    if any(not c.get("mode") for c in cases):
        cols.append((None, None))  # cases about the API or the daemon alone
    return cols


def render(results, catalog):
    cases = results["cases"]
    anchors = {c["id"]: f"case-{i}" for i, c in enumerate(cases)}
    mhd = results.get("mhd") or {}
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           f"<title>Upgrade conformance: MHD {esc(str(mhd.get('version')))}</title>",
           f"<style>{STYLE}</style></head><body>",
           f"<h1>Upgrade conformance: MHD {esc(str(mhd.get('version')))}</h1>",
           *([f'<p class="mutant" id="mutant"><strong>MUTANT: {esc(results["mutant"])}</strong>: a self-test run '
              "against a mutant MHD; its failures are the mutant's, not MHD's.</p>"] if results.get("mutant") else []),
           f"<p>MHD from {esc(str(mhd.get('prefix')))}; baseline {esc(str(results.get('baseline') or 'none'))}; "
           f"{results.get('duration_s', 0):.1f} s.</p>",
           f'<p id="totals" data-count="{len(cases)}">{len(cases)} cases: ']
    out.append(", ".join(f'<span class="{o}" id="total-{o}" data-count="{n}">{n} {o}</span>'
                         for o, n in results["totals"].items() if n))
    out.append("</p><p>" + "".join(f"<span class='swatch {k}'>&nbsp;</span>{esc(text)}" for k, text in LEGEND)
               + "</p>")
    cols = _columns(cases)
    out.append("<table class=matrix><tr><th class=rule>rule</th>")
    for transport, mode in cols:
        name = "API / daemon" if mode is None else f"{modes.lookup(mode).name}<br>{transport}"
        out.append(f"<th>{name}</th>")
    out.append("</tr>")
    for rule_id, rule in results["rules"].items():
        mine = [c for c in cases if rule_id in c["rules"]]
        if not mine:
            continue
        promise = esc(catalog[rule_id].promise) if rule_id in catalog else ""
        out.append(f'<tr id="rule-{rule_id}"><th class="rule" title="{promise}">{rule_id}</th>')
        for transport, mode in cols:
            here = [c for c in mine if c.get("mode") == mode and (mode is None or c["transport"] == transport)]
            if not here:
                out.append("<td class=none></td>")
                continue
            kind = _cell_class(here)
            good = sum(c["verdict"] == "conforms" for c in here)
            title = esc("\n".join(f"{c['id'].split('::')[-1]}: {c['verdict']} ({c['outcome']})" for c in here))
            out.append(f'<td class="cell {kind}" data-cases="{len(here)}" title="{title}">'
                       f'<a href="#{anchors[here[0]["id"]]}">{good}/{len(here)}</a></td>')
        out.append("</tr>")
    out.append("</table><h2>Cases</h2>")
    for c in cases:
        summary = f"{esc(c['id'].split('::')[-1])} [{esc(', '.join(c['rules']))}]: " \
                  f"<span class='{c['outcome']}'>{c['outcome']}</span> ({c['verdict']}, {c['duration_s']:.2f} s)"
        out.append(f'<details class="case" id="{anchors[c["id"]]}" data-outcome="{c["outcome"]}">'
                   f"<summary>{summary}</summary>")
        facts = {k: c[k] for k in ("mode", "transport", "kind", "baseline", "observed", "summary") if c.get(k)}
        out.append(f"<pre>{esc(json.dumps(facts, indent=1))}</pre>")
        if c.get("detail"):
            out.append(f"<pre>{esc(c['detail'])}</pre>")
        out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
