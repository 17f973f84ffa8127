"""report.html: one static page (no external assets) per run.

First the gate's verdict, then the findings grouped as a reader acts on
them (what fails the gate, what the baseline already knows, the rest), each
rule with its statement from the catalogue; then the rule x transport x
mode matrix, each cell leading to all of its cases, problems first; then
the cases (what was expected and seen, the bytes exchanged, the server's
events). Every state has a symbol and words as well as a colour. Counts
carry data-* attributes, so that a test can read them back from the
rendered page (tests/test_html_report.py)."""

import html
import json
import re

from .. import modes
from . import facts, interop
from .confirmation import confirmation_lines
from ..outcome import PROBLEMS, STATES, case_name, gate, problem, problems_first, reason, selected, state

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 110em; }
h1 { font-size: 1.5em; } h3.family { margin: 1em 0 .3em; border-bottom: 1px solid #ccc; }
.rid { white-space: nowrap; font-family: ui-monospace, monospace; }
#verdict { font-size: 1.25em; font-weight: bold; padding: .5em .8em; border: 3px solid; }
#verdict.passed { border-color: #1b5e20; background: #e8f5e9; }
#verdict.failed { border-color: #b71c1c; background: #ffebee; }
.banner { background: #fff3cd; border: 2px solid #b71c1c; padding: .5em; }
.statement { color: #444; margin: .2em 0 .4em 1.6em; }
.finding { margin: .6em 0; } .finding h4 { margin: 0; font-size: 1em; }
.finding ul { margin: .2em 0 .2em 1em; padding-left: 1em; }
.known-cases { margin: .2em 0 .2em 1.6em; color: #444; } .known-cases a { margin-right: .4em; }
.known-text { margin: .2em 0 .2em 1.6em; padding: .3em .6em; border-left: 4px solid #e65100; background: #fff8f0; }
.wrap { overflow-x: auto; max-width: 100%; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #999; padding: 2px 6px; text-align: center; white-space: nowrap; }
table.matrix th.rule { text-align: left; position: sticky; left: 0; background: #fff; z-index: 1; }
table.rest td, table.rest th { text-align: left; padding: 1px 8px; vertical-align: top; }
td a { color: inherit; text-decoration: none; display: block; }
/* Light against dark, as well as hue: the states stay apart without colour vision. */
.s-conforms { background: #c8e6c9; } .s-known { background: #ffe0b2; }
.s-fails { background: #b71c1c; color: #fff; font-weight: bold; }
.s-error { background: #4a148c; color: #fff; font-weight: bold; }
.s-untested { background: #eeeeee; color: #555; } .s-measured { background: #bbdefb; }
.sym { display: inline-block; min-width: 1.2em; text-align: center; }
.legend span.s { display: inline-block; padding: 0 .4em; margin: 0 .3em 0 1em; border: 1px solid #999; }
details.case { margin: .2em 0 .2em 1em; } details.case summary { cursor: pointer; }
pre { background: #f6f6f6; padding: .5em; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 30em;
      overflow-y: auto; }
.cell-cases { margin: .4em 0 .8em 0; } .cell-cases:target { outline: 3px solid #1565c0; }
details.passing, details.cells { margin: .2em 0 .2em 1em; } details.passing ul { columns: 2; margin: .2em 0; font-family: ui-monospace, monospace; }
#toc { margin: .6em 0; line-height: 1.8; } #toc a, .known-cases a { color: #0d47a1; }
table.failing td { padding: 2px 8px; text-align: left; vertical-align: top; }
table.matrix tr.first th, table.matrix tr.first td { border-top: 2px solid #555; }
table.matrix th.transport { font-weight: normal; color: #444; }
table.matrix td.promise { white-space: normal; text-align: left; min-width: 18em; max-width: 30em; font-size: .9em; }
.workaround { display: inline-block; margin-top: .2em; }
code { font-family: ui-monospace, monospace; background: #eef; padding: 0 .2em; }
"""
GROUPS = [("fails", "Findings that fail the gate"), ("known", "Known deviations (as the baseline says)"),
          ("rest", "The other rules")]
SHOWN_CASES = 20  # per finding; the matrix leads to all of them


def _esc(value):
    return html.escape(str(value))


def prose(value):
    """Prose from the catalogue, a baseline or a case: escaped, and
    `backticked` names as code."""
    return re.sub(r"`([^`\n]+)`", r"<code>\1</code>", _esc(value))


def _columns(cases):
    transports = [t for t in modes.KNOWN_TRANSPORTS if any(c["transport"] == t for c in cases)]
    cols = [(t, m.id) for t in transports for m in modes.MODES
            if any(c["transport"] == t and c["mode"] == m.id for c in cases)]
    if any(not c.get("mode") for c in cases):
        cols.insert(0, (None, None))  # cases about the API or the daemon alone: first, in view
    return cols


def _in_cell(case, transport, mode):
    return case.get("mode") == mode and (mode is None or case["transport"] == transport)


def _cell_id(rule_id, transport, mode):
    return f"cell-{rule_id}-{transport or 'api'}-{mode or 'api'}"


def _col_name(transport, mode):
    return "API / daemon" if mode is None else f"{modes.lookup(mode).name}, {transport}"


def _badge(key):
    symbol, words = STATES[key]
    return f'<span class="sym s-{key}" title="{_esc(words)}">{symbol}</span>'


def _legend():
    return ('<p class=legend>' + "".join(f'<span class="s s-{k}">{sym}</span>{_esc(words)}'
                                          for k, (sym, words) in STATES.items()) + "</p>"
            '<p>A cell reads <b>N/M</b>: of the M cases of that rule in that mode and transport, N kept the '
            "promise. The symbol is the cell's state: one case that fails the gate makes the whole cell "
            "fail. A cell leads to all of its cases, problems first.</p>")


def _known_texts(cases):
    """The distinct baseline entries (observed, evidence, workaround) of `cases`."""
    seen = {}
    for c in cases:
        known = c.get("known")
        if known:
            seen.setdefault((known.get("observed", ""), known.get("evidence", "")), known)
    return list(seen.values())


def _known_text(known, label="Baseline"):
    """A baseline entry as the application developer reads it: what MHD
    does, what to do about it, and the evidence."""
    return (f'<div class="known-text">{label}: {prose(known.get("observed", ""))}'
            + (f'<br><span class="workaround"><b>Workaround:</b> {prose(known["workaround"])}</span>'
               if known.get("workaround") else "")
            + (f"<br>Evidence: {prose(known['evidence'])}" if known.get("evidence") else "") + "</div>")


def _finding(rule_id, rule_state, mine, catalog, anchors):
    out = [f'<div class="finding" id="finding-{rule_id}" data-rule="{rule_id}" data-state="{rule_state}">',
           f'<h4>{_badge(rule_state)} <span class=rid>{rule_id}</span>: {_esc(STATES[rule_state][1])}</h4>']
    if rule_id in catalog:
        out.append(f'<p class="statement">{prose(catalog[rule_id].promise)}</p>')
    shown = [c for c in problems_first(mine) if problem(c) or c["verdict"] == "deviates"]
    if rule_state == "known":
        out += [_known_text(known) for known in _known_texts(mine)]
    bad = [c for c in shown if problem(c)]
    if bad:
        out.append("<ul>")
        for c in bad[:SHOWN_CASES]:
            out.append(f'<li><a href="#{anchors[(rule_id, c["id"])]}" class=rid>{_esc(case_name(c))}</a>: '
                       f"{prose(reason(c))}</li>")
        if len(bad) > SHOWN_CASES:
            out.append(f"<li>and {len(bad) - SHOWN_CASES} more: see the matrix row "
                       f'<a href="#rule-{rule_id}" class=rid>{rule_id}</a></li>')
        out.append("</ul>")
    known = [c for c in shown if not problem(c)]
    if known:
        # As the baseline says: one line for all of them, the cells as links.
        common = max({c.get("summary") or "" for c in known}, key=[c.get("summary") or "" for c in known].count)
        out.append(f'<p class="known-cases">{len(known)} case{"s" if len(known) != 1 else ""} deviate as '
                   f"known{': ' + prose(common) if common else ''}<br>"
                   + " ".join(f'<a href="#{anchors[(rule_id, c["id"])]}" class=rid>'
                              f'{_esc(case_name(c).partition("[")[2].rstrip("]") or case_name(c))}</a>'
                              for c in known) + "</p>")
    out.append("</div>")
    return out


def _findings(results, catalog, by_rule, anchors):
    grouped = {"fails": [], "known": [], "rest": []}
    for rule_id, mine in by_rule.items():
        st = state(mine)
        grouped["fails" if st in ("fails", "error") else "known" if st == "known" else "rest"].append((rule_id, st))
    out = ['<section id="findings">']
    for key, title in GROUPS:
        rules = grouped[key]
        if not rules:
            continue
        out.append(f'<h2 id="group-{key}" data-count="{len(rules)}">{_esc(title)} ({len(rules)} '
                   f'rule{"s" if len(rules) != 1 else ""})</h2>')
        if key == "rest":
            out.append('<table class="rest">')
            for rule_id, st in rules:
                mine = by_rule[rule_id]
                good = sum(c["verdict"] == "conforms" for c in mine)
                promise = prose(catalog[rule_id].promise) if rule_id in catalog else ""
                out.append(f'<tr id="finding-{rule_id}" data-rule="{rule_id}" data-state="{st}">'
                           f'<td>{_badge(st)}</td><td class=rid><a href="#rule-{rule_id}">{rule_id}</a></td>'
                           f"<td>{good}/{len(mine)}</td><td>{promise}</td></tr>")
            out.append("</table>")
            continue
        family = None
        for rule_id, st in rules:
            if catalog.get(rule_id) and catalog[rule_id].family != family:
                family = catalog[rule_id].family
                out.append(f'<h3 class="family">{_esc(family)}</h3>')
            out += _finding(rule_id, st, by_rule[rule_id], catalog, anchors)
    out.append("</section>")
    return out


def _cell(rule_id, here, transport, mode):
    """One matrix cell: its state, N/M, and a link to its cases."""
    key = state(here)
    good = sum(c["verdict"] == "conforms" for c in here)
    title = _esc(f"{rule_id}, {_col_name(transport, mode)}: {STATES[key][1]}; {good} of {len(here)} cases conform")
    return (f'<td class="cell s-{key}" data-state="{key}" data-cases="{len(here)}" title="{title}">'
            f'<a href="#{_cell_id(rule_id, transport, mode)}">{STATES[key][0]} {good}/{len(here)}</a></td>')


def _matrix_rows(by_rule, cols):
    """(rule, transport, {column index: cases}) per row: a rule has a row
    per transport it ran over (one for the API's own cases), so that the
    columns are the modes alone and the table fits a laptop's width."""
    for rule_id, mine in by_rule.items():
        for transport in dict.fromkeys(t for t, _ in cols):
            row = {i: here for i, (t, m) in enumerate(cols) if t == transport
                   for here in [[c for c in mine if _in_cell(c, t, m)]] if here}
            if row:
                yield rule_id, transport, row


def _matrix(by_rule, cols):
    mode_cols = list(dict.fromkeys(m for _, m in cols))
    out = ['<h2 id="matrix">Matrix</h2>', _legend(),
           '<div class="wrap"><table class=matrix><tr><th class=rule>rule</th><th>transport</th>']
    out += [f"<th>{_esc('API / daemon' if m is None else modes.lookup(m).name)}</th>" for m in mode_cols]
    out.append("</tr>")
    rows = list(_matrix_rows(by_rule, cols))
    span = {rule_id: sum(r[0] == rule_id for r in rows) for rule_id, _, _ in rows}
    first = None
    for rule_id, transport, row in rows:
        head = ""
        if rule_id != first:
            first = rule_id
            head = (f'<th class="rule" rowspan="{span[rule_id]}" id="rule-{rule_id}">'
                    f'<span class=rid>{rule_id}</span></th>')
        out.append(f'<tr class="{"first" if head else "more"}" data-rule="{rule_id}">{head}'
                   f'<th class="transport">{transport if transport else "API"}</th>')
        by_mode = {cols[i][1]: here for i, here in row.items()}
        for mode in mode_cols:
            here = by_mode.get(mode)
            out.append(_cell(rule_id, here, transport, mode) if here else "<td class=none></td>")
        out.append("</tr>")
    out.append("</table></div>")
    return out


def _failing_cells(by_rule, cols):
    """The cells that fail the gate, first on the page: each with its first
    reason and a link to its cases."""
    bad = []
    for rule_id, transport, row in _matrix_rows(by_rule, cols):
        for i, here in row.items():
            if state(here) in ("fails", "error"):
                bad.append((rule_id, cols[i], problems_first(here)))
    out = [f'<section id="failing" data-count="{len(bad)}"><h2>Cells that fail the gate ({len(bad)})</h2>']
    if not bad:
        out.append("<p>None: every cell that ran conforms or deviates as the baseline says.</p></section>")
        return out
    out.append('<table class="failing">')
    for rule_id, (transport, mode), here in bad:
        n_bad = sum(bool(problem(c)) for c in here)
        out.append(f'<tr data-rule="{rule_id}">{_cell(rule_id, here, transport, mode)}'
                   f'<td class=rid>{rule_id}</td><td>{_esc(_col_name(transport, mode))}</td>'
                   f"<td>{n_bad} of {len(here)}: {prose(reason(here[0]))}</td></tr>")
    out.append("</table></section>")
    return out


def _toc(results, by_rule, with_facts):
    """Where each part of the page is, with its count."""
    groups = {"fails": 0, "known": 0, "rest": 0}
    for mine in by_rule.values():
        st = state(mine)
        groups["fails" if st in ("fails", "error") else "known" if st == "known" else "rest"] += 1
    parts = [("failing", "Cells that fail the gate")]
    parts += [(f"group-{k}", f"{title} ({n})") for k, title in GROUPS for n in [groups[k]] if n]
    parts.append(("matrix", "Matrix"))
    if results.get("interop"):
        parts.append(("interop", "Real clients"))
    if with_facts:
        parts.append(("facts", "Facts about this MHD"))
    parts.append(("cases", "Cases, by rule and cell"))
    return ['<nav id="toc"><b>Contents:</b> ' + " · ".join(f'<a href="#{anchor}">{_esc(words)}</a>'
                                                           for anchor, words in parts) + "</nav>"]


def _interop(results):
    """A row per real client and transport, a column per mode (U-WS-6), as
    the matrix shows a rule: a cell leads to the rule's cases there."""
    lines, cols = interop.rows(results)
    if not lines:
        return []
    out = ['<h2 id="interop">Real clients (U-WS-6)</h2>', f"<p>{_esc(interop.LEAD)}</p>",
           '<div class="wrap"><table class="matrix interop"><tr><th class=rule>client</th><th>transport</th>']
    out += [f"<th>{_esc(modes.lookup(m).name)}</th>" for m in cols]
    out.append("</tr>")
    for client, transport, cells in lines:
        out.append(f'<tr data-client="{_esc(client)}" data-transport="{transport}"><th class=rule>{_esc(client)}</th>'
                   f"<th>{transport}</th>")
        for mode in cols:
            cell = cells.get(mode)
            if cell is None:
                out.append("<td class=none></td>")
                continue
            title = _esc(f"{client}, {_col_name(transport, mode)}: {STATES[cell['state']][1]}; {cell['conform']} "
                         f"of {cell['cases']} cases conform")
            out.append(f'<td class="cell s-{cell["state"]}" data-state="{cell["state"]}" data-cases="{cell["cases"]}" '
                       f'title="{title}"><a href="#{_cell_id("U-WS-6", transport, mode)}">'
                       f"{_esc(interop.cell_text(cell))}</a></td>")
        out.append("</tr>")
    out.append("</table></div>")
    return out


def _case(c, anchor, rule_id):
    key = state([c])
    summary = (f"{_badge(key)} <span class=rid>{_esc(case_name(c))}</span> [{_esc(', '.join(c['rules']))}]: "
               f"{_esc(c['outcome'])} ({_esc(c['verdict'])}, {c.get('duration_s', 0):.2f} s)")
    out = [f'<details class="case" id="{anchor}" data-case="{_esc(c["id"])}" data-outcome="{c["outcome"]}">'
           f"<summary>{summary}</summary>"]
    if problem(c) or c.get("summary"):
        out.append(f"<p>{prose(reason(c))}</p>")
    known_rule = (c.get("known") or {}).get("rule")
    if known_rule:
        out.append(f'<p>As the baseline says: <a href="#finding-{_esc(known_rule)}">{_esc(known_rule)}</a>.</p>')
    facts_ = {k: c[k] for k in ("mode", "transport", "client", "kind", "failure_kind", "baseline", "observed")
              if c.get(k)}
    out.append(f"<pre>{_esc(json.dumps(facts_, indent=1))}</pre>")
    if c.get("detail") and problem(c):
        out.append(f"<pre>{_esc(c['detail'])}</pre>")
    elif c.get("detail"):
        out.append("<p>Its bytes and events: results.json.</p>")  # a known deviation: the page stays light
    out.append("</details>")
    return out


def _conforming(c):
    return c["verdict"] == "conforms" and not problem(c) and not c.get("known")


def _folded(cases):
    """The cases of a cell that conform, folded, a line each: the page
    stays light (their bytes and events are in results.json)."""
    items = "".join(f'<li data-outcome="{c["outcome"]}">{_esc(case_name(c))} ({c.get("duration_s", 0):.2f} s)</li>'
                    for c in cases)
    return [f'<details class="passing"><summary>{STATES["conforms"][0]} {len(cases)} conform</summary>'
            f"<ul>{items}</ul></details>"]


def _cell_block(rule_id, transport, mode, here, anchors):
    out = [f'<div class="cell-cases" id="{_cell_id(rule_id, transport, mode)}" data-cases="{len(here)}">'
           f"<b>{_esc(_col_name(transport, mode))}</b>"]
    for c in here:
        if not _conforming(c):
            out += _case(c, anchors[(rule_id, c["id"])], rule_id)
    plain = [c for c in here if _conforming(c)]
    if plain:
        out += _folded(plain)
    out.append("</div>")
    return out


def _cases(by_rule, cols, catalog, anchors):
    """Per rule, the cells with something to read (a problem, a known
    deviation) open; the cells whose every case conforms folded into one
    line, which a matrix link opens."""
    out = ['<h2 id="cases">Cases, by rule and cell</h2>']
    for rule_id, mine in by_rule.items():
        out.append(f'<section id="cases-{rule_id}"><h3><span class=rid>{rule_id}</span></h3>')
        if rule_id in catalog:
            out.append(f'<p class="statement">{prose(catalog[rule_id].promise)}</p>')
        quiet = []
        for transport, mode in cols:
            here = problems_first([c for c in mine if _in_cell(c, transport, mode)])
            if not here:
                continue
            if all(_conforming(c) for c in here):
                quiet.append((transport, mode, here))
            else:
                out += _cell_block(rule_id, transport, mode, here, anchors)
        if quiet:
            out.append(f'<details class="cells"><summary>{STATES["conforms"][0]} {len(quiet)} cell'
                       f'{"s" if len(quiet) != 1 else ""} where every case conforms '
                       f"({sum(len(h) for _, _, h in quiet)} cases)</summary>")
            for transport, mode, here in quiet:
                out += _cell_block(rule_id, transport, mode, here, anchors)
            out.append("</details>")
        out.append("</section>")
    return out


# A link to a cell inside a folded part opens it (Chromium does so itself;
# other browsers need this).
OPEN_TARGET = ("<script>function openTarget() { for (let e = document.getElementById(location.hash.slice(1)); e; "
               "e = e.parentElement) if (e.tagName === 'DETAILS') e.open = true; }\n"
               "addEventListener('hashchange', openTarget); addEventListener('load', openTarget);</script>")


def render(results, catalog):
    cases = results["cases"]
    by_rule = {rule_id: [c for c in cases if rule_id in c["rules"]] for rule_id in selected(results["rules"], cases)}
    anchors = {(rule_id, c["id"]): f"case-{i}-{rule_id}" for i, c in enumerate(cases) for rule_id in c["rules"]}
    cols = _columns(cases)
    mhd = results.get("mhd") or {}
    verdict = results.get("gate") or gate(cases, results.get("interrupted"), results.get("baseline"))
    passed = verdict["passed"]
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Upgrade conformance: MHD {_esc(mhd.get('version'))}</title>",
           f"<style>{STYLE}</style></head><body>",
           f"<h1>Upgrade conformance: MHD {_esc(mhd.get('version'))}</h1>",
           f'<p id="verdict" class="{"passed" if passed else "failed"}" data-passed="{str(bool(passed)).lower()}">'
           f"{_badge('conforms' if passed else 'fails')} {_esc(verdict['headline'])}</p>"]
    if results.get("interrupted"):
        out.append('<p class="banner" id="interrupted"><strong>INTERRUPTED</strong>: the run stopped before '
                   "every selected case ran; what is missing is neither passed nor failed.</p>")
    if results.get("mutant"):
        out.append(f'<p class="banner" id="mutant"><strong>MUTANT: {_esc(results["mutant"])}</strong>: a '
                   "self-test run against a mutant MHD; its failures are the mutant's, not MHD's.</p>")
    out.append(f"<p>MHD from {_esc(mhd.get('prefix'))}; baseline {_esc(results.get('baseline') or 'none')}; "
               f"{results.get('duration_s', 0):.1f} s. "
               f'<span id="totals" data-count="{len(cases)}">{len(cases)} cases</span>: '
               + ", ".join(f'<span id="total-{o}" data-count="{n}">{n} {o}</span>'
                           for o, n in results["totals"].items() if n) + "</p>")
    if verdict["problems"]:
        out.append("<ul>" + "".join(f"<li>{_esc(PROBLEMS[k])}: " + " ".join(f'<a class=rid href="#finding-{r}">{r}</a>'
                                                                         for r in rules) + "</li>"
                                    for k, rules in verdict["problems"].items()) + "</ul>")
    if results.get("confirmation"):
        out.append(f'<div id="confirmation"><b>Confirmation reruns</b> ({results["confirmation"]["reruns"]} each; '
                   "the gate stays the run's):<ul>" + "".join(f"<li>{_esc(line)}</li>" for line in
                                                            confirmation_lines(results["confirmation"]))
                   + "</ul></div>")
    found = facts.html(results, catalog, prose)
    out += _toc(results, by_rule, bool(found))
    out += _failing_cells(by_rule, cols)
    out += _findings(results, catalog, by_rule, anchors)
    out += _matrix(by_rule, cols)
    out += _interop(results)
    out += found
    out += _cases(by_rule, cols, catalog, anchors)
    out.append(OPEN_TARGET)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
