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
"""
GROUPS = [("fails", "Findings that fail the gate"), ("known", "Known deviations (as the baseline says)"),
          ("rest", "The other rules")]
SHOWN_CASES = 20  # per finding; the matrix leads to all of them


def _esc(value):
    return html.escape(str(value))


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
    """The distinct baseline entries (observed, evidence) of `cases`."""
    seen = {}
    for c in cases:
        known = c.get("known")
        if known:
            seen.setdefault((known.get("observed", ""), known.get("evidence", "")), known)
    return list(seen.values())


def _finding(rule_id, rule_state, mine, catalog, anchors):
    out = [f'<div class="finding" id="finding-{rule_id}" data-rule="{rule_id}" data-state="{rule_state}">',
           f'<h4>{_badge(rule_state)} <span class=rid>{rule_id}</span>: {_esc(STATES[rule_state][1])}</h4>']
    if rule_id in catalog:
        out.append(f'<p class="statement">{_esc(catalog[rule_id].promise)}</p>')
    shown = [c for c in problems_first(mine) if problem(c) or c["verdict"] == "deviates"]
    if rule_state == "known":
        for known in _known_texts(mine):
            out.append(f'<div class="known-text">Baseline: {_esc(known.get("observed", ""))}'
                       + (f"<br>Evidence: {_esc(known['evidence'])}" if known.get("evidence") else "") + "</div>")
    bad = [c for c in shown if problem(c)]
    if bad:
        out.append("<ul>")
        for c in bad[:SHOWN_CASES]:
            out.append(f'<li><a href="#{anchors[(rule_id, c["id"])]}" class=rid>{_esc(case_name(c))}</a>: '
                       f"{_esc(reason(c))}</li>")
        if len(bad) > SHOWN_CASES:
            out.append(f"<li>and {len(bad) - SHOWN_CASES} more: see the matrix row "
                       f'<a href="#rule-{rule_id}" class=rid>{rule_id}</a></li>')
        out.append("</ul>")
    known = [c for c in shown if not problem(c)]
    if known:
        # As the baseline says: one line for all of them, the cells as links.
        common = max({c.get("summary") or "" for c in known}, key=[c.get("summary") or "" for c in known].count)
        out.append(f'<p class="known-cases">{len(known)} case{"s" if len(known) != 1 else ""} deviate as '
                   f"known{': ' + _esc(common) if common else ''}<br>"
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
                promise = _esc(catalog[rule_id].promise) if rule_id in catalog else ""
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


def _matrix(by_rule, cols):
    out = ["<h2>Matrix</h2>", _legend(), '<div class="wrap"><table class=matrix><tr><th class=rule>rule</th>']
    out += [f"<th>{_esc(_col_name(t, m)).replace(', ', '<br>')}</th>" for t, m in cols]
    out.append("</tr>")
    for rule_id, mine in by_rule.items():
        out.append(f'<tr id="rule-{rule_id}"><th class="rule"><span class=rid>{rule_id}</span></th>')
        for transport, mode in cols:
            here = [c for c in mine if _in_cell(c, transport, mode)]
            if not here:
                out.append("<td class=none></td>")
                continue
            key = state(here)
            good = sum(c["verdict"] == "conforms" for c in here)
            title = _esc(f"{rule_id}, {_col_name(transport, mode)}: {STATES[key][1]}; {good} of {len(here)} "
                         "cases conform")
            out.append(f'<td class="cell s-{key}" data-state="{key}" data-cases="{len(here)}" title="{title}">'
                       f'<a href="#{_cell_id(rule_id, transport, mode)}">{STATES[key][0]} {good}/{len(here)}</a></td>')
        out.append("</tr>")
    out.append("</table></div>")
    return out


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
        out.append(f"<p>{_esc(reason(c))}</p>")
    if c.get("known"):
        out.append(f'<div class="known-text">Baseline ({_esc(c["known"].get("rule", rule_id))}): '
                   f'{_esc(c["known"].get("observed", ""))}</div>')
    facts = {k: c[k] for k in ("mode", "transport", "client", "kind", "failure_kind", "baseline", "observed")
             if c.get(k)}
    out.append(f"<pre>{_esc(json.dumps(facts, indent=1))}</pre>")
    if c.get("detail"):
        out.append(f"<pre>{_esc(c['detail'])}</pre>")
    out.append("</details>")
    return out


def _cases(by_rule, cols, catalog, anchors):
    out = ["<h2>Cases, by rule and cell</h2>"]
    for rule_id, mine in by_rule.items():
        out.append(f'<section id="cases-{rule_id}"><h3><span class=rid>{rule_id}</span></h3>')
        if rule_id in catalog:
            out.append(f'<p class="statement">{_esc(catalog[rule_id].promise)}</p>')
        for transport, mode in cols:
            here = problems_first([c for c in mine if _in_cell(c, transport, mode)])
            if not here:
                continue
            out.append(f'<div class="cell-cases" id="{_cell_id(rule_id, transport, mode)}" '
                       f'data-cases="{len(here)}"><b>{_esc(_col_name(transport, mode))}</b>')
            for c in here:
                out += _case(c, anchors[(rule_id, c["id"])], rule_id)
            out.append("</div>")
        out.append("</section>")
    return out


def render(results, catalog):
    cases = results["cases"]
    by_rule = {rule_id: [c for c in cases if rule_id in c["rules"]] for rule_id in selected(results["rules"], cases)}
    anchors = {(rule_id, c["id"]): f"case-{i}-{rule_id}" for i, c in enumerate(cases) for rule_id in c["rules"]}
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
    out += _findings(results, catalog, by_rule, anchors)
    cols = _columns(cases)
    out += _matrix(by_rule, cols)
    out += _interop(results)
    out += facts.html(results, catalog, _esc)
    out += _cases(by_rule, cols, catalog, anchors)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
