"""The interop table (harness/reports/interop.py): what results.json,
summary.md and report.html say of real clients, and how the table looks in
Chromium (a screenshot, read back pixel by pixel)."""

import re

import chromium

from harness import catalog
from harness.reports import html_report, interop, results


def case(i, client, mode, transport, verdict, outcome, **extra):
    return {"id": f"cases/test_interop.py::t{i}[{mode}-{transport}-{client}]", "rules": ["U-WS-6"], "mode": mode,
            "transport": transport, "client": client, "kind": "promise", "verdict": verdict, "outcome": outcome,
            "duration_s": 0.1, **extra}


def interop_run():
    """chromium: conforms over plain, fails over HTTPS in epoll; node-ws: a
    known deviation in select over HTTPS; a case of another rule."""
    cat = {r.id: r for r in catalog.load().values()}
    cases = [case(0, "chromium", "M-EPOLL", "plain", "conforms", "passed"),
             case(1, "chromium", "M-EPOLL", "https", "deviates", "failed", summary="[MHD, U-WS-6] no byte for 5 s"),
             case(2, "chromium", "M-EPOLL", "https", "conforms", "passed"),
             case(3, "node-ws", "M-SELECT", "https", "deviates", "expected-deviation", baseline="deviates"),
             case(4, "node-ws", "M-EPOLL", "plain", "conforms", "passed"),
             {**case(5, None, "M-EPOLL", "plain", "conforms", "passed"), "rules": ["U-WS-1"], "client": None}]
    return results.build(cases, cat, {"version": "1.0.10", "prefix": "/x"}, 1.0, ("plain", "https"), None), cat


def test_each_cell_is_a_client_transport_and_mode():
    data, _ = interop_run()
    table = data["interop"]
    assert list(table) == ["chromium", "node-ws"]  # the registry's order, not the cases'
    assert table["chromium"]["https"]["M-EPOLL"] == {"state": "fails", "cases": 2, "conform": 1}
    assert table["node-ws"]["https"] == {"M-SELECT": {"state": "known", "cases": 1, "conform": 0}}
    assert "M-SELECT" not in table["chromium"]["plain"]


def test_summary_has_a_row_per_client_and_transport():
    data, cat = interop_run()
    md = results.summary_markdown(data, cat)
    assert "| Client | Transport | select | epoll |" in md
    assert "| chromium | https |  | \u2717 1/2 |" in md
    assert "| node-ws | https | ! 0/1 |  |" in md


def test_no_interop_cases_no_table():
    data, cat = interop_run()
    data["cases"] = [c for c in data["cases"] if not c.get("client")]
    data["interop"] = interop.table(data["cases"])
    assert data["interop"] == {}
    assert "Real clients" not in results.summary_markdown(data, cat)
    assert 'id="interop"' not in html_report.render(data, cat)


def test_interop_table_in_a_chromium_screenshot(tmp_path):
    data, cat = interop_run()
    # The interop table alone at the top of a page, as report.html renders it.
    page = tmp_path / "interop.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset=utf-8><style>{html_report.STYLE}</style></head>"
                    f"<body>{''.join(html_report._interop(data))}</body></html>")
    pixels, _ = chromium.screenshot(page, (1000, 400))
    seen = chromium.state_pixels(pixels, html_report.STYLE)
    # Cells of 4 rows: chromium plain (1 conforms), chromium https (1 fails),
    # node-ws plain (1 conforms), node-ws https (1 known). A cell is some
    # hundreds of pixels: each state's colour shows, in proportion.
    assert seen["fails"] > 200 and seen["known"] > 200, seen
    assert seen["conforms"] > 1.5 * seen["fails"], seen
    assert seen["error"] == 0, seen  # (#eee, untested, is also a shade that text edges take)
    dom = chromium.dump_dom(page)
    rows = re.findall(r'<tr data-client="([\w-]+)" data-transport="(\w+)">', dom)
    assert rows == [("chromium", "plain"), ("chromium", "https"), ("node-ws", "plain"), ("node-ws", "https")]
    assert re.findall(r'class="cell s-(\w+)"', dom) == ["conforms", "fails", "conforms", "known"]
