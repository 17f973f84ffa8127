"""report.html: renders in a real browser, says what results.json says, puts
the verdict and the findings first, and leads from every matrix cell to
all of its cases."""

import json
import re

import chromium
import pytest

from harness import catalog
from harness import outcome as verdicts
from harness.reports import html_report, results


def case(i, rule, mode, transport, verdict, outcome, **extra):
    return {"id": f"cases/test_x.py::t{i}[{mode}-{transport}]", "rules": [rule], "mode": mode,
            "transport": transport, "kind": "promise", "verdict": verdict, "outcome": outcome,
            "duration_s": 0.1, "detail": f"<bytes & events of case {i}>", **extra}


def mixed_run():
    """A pass, a known deviation, a new deviation, an error, a case about
    the API alone."""
    cat = {r.id: r for r in catalog.load().values()}
    known = {"rule": "U-ACT-1", "observed": "HTTPS: stays open now and then", "evidence": "10 of 34 runs"}
    cases = [case(0, "U-ACT-1", "M-EPOLL", "plain", "conforms", "passed"),
             case(1, "U-ACT-1", "M-EPOLL", "https", "deviates", "expected-deviation", baseline="intermittent",
                  known=known, summary="the connection is still open 2.0 s after CLOSE"),
             case(2, "U-HALF-2", "M-TPC", "https", "conforms", "passed"),
             case(3, "U-HALF-2", "M-TPC", "https", "deviates", "failed", summary="no FIN within 5.0 s"),
             case(4, "U-HALF-2", "M-TPC", "plain", "untested", "error", summary="KeyError: 'x'"),
             dict(case(5, "U-API-1", None, "plain", "conforms", "passed"), mode=None)]
    data = results.build(cases, cat, {"version": "0.9.75", "prefix": "/usr"}, 1.0, ("plain", "https"),
                         "baselines/0.9.75.json")
    return data, cat


@pytest.fixture
def run():
    return mixed_run()


def counts(page):
    cases = page[page.index('<h2 id="cases">'):]
    matrix = page[page.index('<h2 id="matrix">'):page.index("</table>", page.index('<h2 id="matrix">'))]
    return {
        "cases": len(re.findall(r'data-outcome="[\w-]+"', cases)),
        "totals": {m[0]: int(m[1]) for m in re.findall(r'id="total-([a-z-]+)" data-count="(\d+)"', page)},
        "cells": sorted(re.findall(r'class="cell s-(\w+)"', matrix)),
    }


def test_gate_verdict_names_what_failed(run):
    data, _ = run
    assert data["gate"]["passed"] is False
    assert data["gate"]["headline"].startswith("FAILED: 1 new deviation (U-HALF-2); 1 error")
    assert data["gate"]["problems"] == {"new": ["U-HALF-2"], "error": ["U-HALF-2"]}
    clean = [c for c in data["cases"] if not verdicts.problem(c)]
    ok = verdicts.gate(clean, baseline="baselines/0.9.75.json")
    assert ok["passed"] and ok["headline"].startswith("PASSED: all 4 cases that ran behaved as the baseline (0.9.75.json)")
    assert "1 known deviations in 1 rules" in ok["headline"]
    assert verdicts.gate(clean, interrupted=True)["headline"].startswith("INTERRUPTED")
    assert not verdicts.gate(clean, interrupted=True)["passed"]


def test_page_says_what_results_say(run):
    data, cat = run
    page = html_report.render(data, cat)
    got = counts(page)
    assert got["cases"] == len(data["cases"])
    assert got["totals"] == {o: n for o, n in data["totals"].items() if n}
    assert got["cells"] == ["conforms", "conforms", "error", "fails", "known"]
    assert "&lt;bytes &amp; events of case 3&gt;" in page  # details escaped, not markup


def test_every_state_has_its_own_symbol():
    symbols = [sym for sym, _ in verdicts.STATES.values()]
    assert len(set(symbols)) == len(symbols) and all(symbols)


def _deuteranopia(hex_colour):
    """Machado et al. (2009), severity 1.0, on linear RGB; then relative luminance."""
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    m = ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881))
    sim = [max(0.0, min(1.0, sum(a * b for a, b in zip(row, lin)))) for row in m]
    return 0.2126 * sim[0] + 0.7152 * sim[1] + 0.0722 * sim[2]


def test_gate_failing_cells_stand_apart_under_deuteranopia():
    backgrounds = dict(re.findall(r"\.s-(\w+) \{ background: (#[0-9a-f]{6})", html_report.STYLE))
    lum = {k: _deuteranopia(v) for k, v in backgrounds.items()}
    for bad in ("fails", "error"):
        for good in ("conforms", "known", "measured", "untested"):
            lighter, darker = max(lum[bad], lum[good]), min(lum[bad], lum[good])
            # WCAG contrast ratio between the two backgrounds, as seen with deuteranopia
            assert (lighter + 0.05) / (darker + 0.05) > 3, (bad, good, lum)


def test_page_renders_in_chromium(run, tmp_path):
    data, cat = run
    page = tmp_path / "report.html"
    page.write_text(html_report.render(data, cat))
    dom = chromium.dump_dom(page)
    got = counts(dom)
    assert got["cases"] == len(data["cases"])
    assert got["totals"] == {o: n for o, n in data["totals"].items() if n}
    assert got["cells"] == ["conforms", "conforms", "error", "fails", "known"]

    # The headline comes first and says why the gate failed.
    body = dom.split("<body>", 1)[1]
    first = re.search(r'<p id="verdict"[^>]*data-passed="(\w+)"[^>]*>(.*?)</p>', body, re.S)
    assert first and body.index(first.group(0)) < body.index('id="findings"')
    assert first.group(1) == "false" and "1 new deviation (U-HALF-2)" in first.group(2)

    # Findings grouped: what fails the gate, then what the baseline knows
    # (with its text), then the rest; each rule with its statement.
    groups = [m for m in re.findall(r'<h2 id="group-(\w+)"', dom)]
    assert groups == ["fails", "known", "rest"]
    fails, known, rest = (dom[dom.index(f'id="group-{g}"'):] for g in groups)
    assert 'data-rule="U-HALF-2"' in fails.split('id="group-known"')[0]
    known = known.split('id="group-rest"')[0]
    assert 'data-rule="U-ACT-1"' in known and "HTTPS: stays open now and then" in known
    assert 'data-rule="U-API-1"' in rest
    assert cat["U-HALF-2"].promise[:40] in html_report.html.unescape(dom)

    # Every cell leads to all of its cases, those that fail the gate first.
    matrix = dom[dom.index('<h2 id="matrix">'):]
    cells = re.findall(r'<td class="cell s-(\w+)" data-state="\w+" data-cases="(\d+)"[^>]*><a href="#([^"]+)"', matrix)
    assert len(cells) == 5
    for cell_state, n, target in cells:
        block = re.search(rf'<div class="cell-cases" id="{re.escape(target)}" data-cases="(\d+)">(.*?)</div>\s*'
                          r'(?=<div class="cell-cases"|</section>|</?details)', dom, re.S)
        assert block, f"the cell's link #{target} leads nowhere"
        assert block.group(1) == n
        outcomes = re.findall(r'data-outcome="([\w-]+)"', block.group(2))
        assert len(outcomes) == int(n)
        if cell_state == "fails":
            assert outcomes[0] == "failed", outcomes


def test_pytest_assert_rewrite_is_not_in_the_detail():
    from harness.outcome import without_rewrite
    text = "AssertionError: expected 101 Switching Protocols\nassert 200 == 101\n +  where 200 = r.status"
    assert without_rewrite(text) == "AssertionError: expected 101 Switching Protocols"


def test_results_json_round_trip(run, tmp_path):
    data, cat = run
    results.write(tmp_path, data, cat)
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["gate"] == data["gate"]
    summary = (tmp_path / "summary.md").read_text()
    assert summary.splitlines()[2] == f"**{data['gate']['headline']}**"
    assert "## Cases that did not behave (2)" in summary
    assert "U-HALF-2" in summary and "U-SOCK-1" not in summary  # only the selected rules


def wide_run():
    """Twelve rules in every mode over both transports (as a default run
    has them), most conforming; one known deviation; failures in the last
    column (ext-epoll over HTTPS), where a scrollbar would hide them."""
    from harness import modes
    cat = {r.id: r for r in catalog.load().values()}
    rules = [r for r in cat if not cat[r].id.startswith("U-API")][:12]
    cases, i = [], 0
    for rule in rules:
        for transport in ("plain", "https"):
            for mode in modes.MODES:
                failing = rule == rules[-1] and transport == "https" and mode is modes.MODES[-1]
                known = rule == rules[3] and transport == "https"
                extra = ({"summary": "no FIN within 5.0 s"} if failing else
                         {"known": {"rule": rule, "observed": "stays open", "workaround": "call `MHD_run`"},
                          "baseline": "deviation"} if known else {})
                cases.append(case(i, rule, mode.id, transport, "deviates" if failing or known else "conforms",
                                  "failed" if failing else "expected-deviation" if known else "passed", **extra))
                i += 1
    data = results.build(cases, cat, {"version": "1.0.10", "prefix": "/x"}, 1.0, ("plain", "https"), None)
    return data, cat, rules[-1]


FAILING_CELL = ("const r = document.querySelector('{} td.cell.s-fails').getBoundingClientRect(); "
                "return {{left: r.left, right: r.right, top: r.top, bottom: r.bottom, vw: innerWidth, vh: innerHeight, "
                "height: document.documentElement.scrollHeight}};")


def cell_colour(pixels, width, rect, style_key):
    """The share of the rectangle's pixels in the state's colour."""
    want = chromium.colour(dict(re.findall(r"\.s-(\w+) \{ background: (#[0-9a-f]{6})", html_report.STYLE))[style_key])
    inside = [pixels[y * width + x] for y in range(int(rect["top"]) + 2, int(rect["bottom"]) - 2)
              for x in range(int(rect["left"]) + 2, int(rect["right"]) - 2)]
    return sum(p == want for p in inside) / max(1, len(inside))


def test_report_screenshots_at_1400_and_700_px(tmp_path):
    """At 700 px the first screen shows the cell that fails the gate; at
    1400 px the whole matrix fits, its last (HTTPS) column in view; passing
    detail is folded, so that the page stays light."""
    data, cat, failing_rule = wide_run()
    page = tmp_path / "report.html"
    page.write_text(html_report.render(data, cat))

    first = chromium.measure(page, FAILING_CELL.format("#failing"), (700, 900))
    assert first["bottom"] <= first["vh"] and first["right"] <= first["vw"], first
    pixels, width = chromium.screenshot(page, (700, 900))
    assert cell_colour(pixels, width, first, "fails") > 0.5, first  # seen, in the gate's red

    # The matrix alone at the top of a page, as report.html lays it out.
    alone = tmp_path / "matrix.html"
    alone.write_text(f"<!DOCTYPE html><html><head><meta charset=utf-8><style>{html_report.STYLE}</style></head>"
                     "<body>" + "".join(html_report._matrix(
                         {r: [c for c in data["cases"] if r in c["rules"]] for r in dict.fromkeys(
                             r for c in data["cases"] for r in c["rules"])}, html_report._columns(data["cases"])))
                     + "</body></html>")
    fits = chromium.measure(alone, "const w = document.querySelector('.wrap'); "
                                   "return {scroll: w.scrollWidth, client: w.clientWidth};", (1400, 900))
    assert fits["scroll"] <= fits["client"], fits  # no horizontal scrollbar
    cell = chromium.measure(alone, FAILING_CELL.format("table.matrix"), (1400, 2000))
    assert cell["right"] <= cell["vw"] and cell["bottom"] <= cell["vh"], cell
    pixels, width = chromium.screenshot(alone, (1400, 2000))
    assert cell_colour(pixels, width, cell, "fails") > 0.5, cell

    # Light: the 229 conforming cases fold to a line each, without their detail.
    html_text = page.read_text()
    assert html_text.count("&lt;bytes &amp; events of case") == 1  # the failing case's alone
    assert len(html_text) < 700 * len(data["cases"]), len(html_text)  # unfolded, a full run took 1250 a case
    assert first["height"] < 25 * len(data["cases"]), first
