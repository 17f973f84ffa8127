"""report.html: renders in a real browser, and says what results.json says."""

import re
import shutil
import subprocess

import pytest

from harness import catalog, html_report, results


def case(i, rule, mode, transport, verdict, outcome):
    return {"id": f"cases/test_x.py::t{i}[{mode}-{transport}]", "rules": [rule], "mode": mode,
            "transport": transport, "kind": "promise", "verdict": verdict, "outcome": outcome,
            "duration_s": 0.1, "detail": f"<bytes & events of case {i}>"}


@pytest.fixture
def run():
    cat = {r.id: r for r in catalog.load().values()}
    cases = [case(0, "U-ACT-1", "M-EPOLL", "plain", "conforms", "passed"),
             case(1, "U-ACT-1", "M-EPOLL", "https", "deviates", "expected-deviation"),
             case(2, "U-HALF-2", "M-TPC", "https", "deviates", "failed"),
             case(3, "U-HALF-2", "M-TPC", "plain", "untested", "error"),
             dict(case(4, "U-API-1", None, "plain", "conforms", "passed"), mode=None)]
    return results.build(cases, cat, "0.9.75-test", 1.0, ("plain", "https"), None) | {
        "mhd": {"version": "0.9.75", "prefix": "/usr"}}, cat


def counts(page):
    return {
        "cases": len(re.findall(r"<details class=\"?case\"?", page)),
        "totals": {m[0]: int(m[1]) for m in re.findall(r"id=\"?total-([a-z-]+)\"? data-count=\"?(\d+)", page)},
        "cells": sorted(re.findall(r"class=\"cell (\w+)\"", page)),
    }


def test_page_says_what_results_say(run):
    data, cat = run
    page = html_report.render(data, cat)
    got = counts(page)
    assert got["cases"] == len(data["cases"])
    assert got["totals"] == {o: n for o, n in data["totals"].items() if n}
    assert got["cells"] == ["conforms", "conforms", "deviates", "known", "untested"]
    assert "&lt;bytes &amp; events of case 2&gt;" in page  # details escaped, not markup


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed (apt-get install chromium)")
def test_page_renders_in_chromium(run, tmp_path):
    data, cat = run
    page = tmp_path / "report.html"
    page.write_text(html_report.render(data, cat))
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    got = counts(dom.stdout)
    assert got["cases"] == len(data["cases"])
    assert got["totals"] == {o: n for o, n in data["totals"].items() if n}
    assert got["cells"] == ["conforms", "conforms", "deviates", "known", "untested"]
