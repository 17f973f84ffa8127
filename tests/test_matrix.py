"""The rules x versions table of a matrix run."""

import re

import chromium

from harness import catalog
from harness.reports import html_report, matrix


def results(version, **rules):
    return {"mhd": {"version": version}, "totals": {"passed": 1},
            "rules": {r: {"verdict": v, "by_transport": t} for r, (v, t) in rules.items()}}


def test_table_marks_what_differs():
    a = results("0.9.75", **{"U-QUEUE-2": ("deviates", {"plain": "deviates"}),
                             "U-ACT-1": ("conforms", {"plain": "conforms", "https": "conforms"}),
                             "U-ACT-10": ("conforms", {"plain": "conforms"})})
    b = results("1.0.10", **{"U-QUEUE-2": ("conforms", {"plain": "conforms"}),
                             "U-ACT-1": ("deviates", {"plain": "conforms", "https": "deviates"}),
                             "U-ACT-10": ("conforms", {"plain": "conforms"})})
    table = matrix.build([("0.9.75", None, 0, a), ("1.0.10", "/p", 1, b), ("1.0.1", "/q", 3, None)])
    assert table["rules"]["U-ACT-1"]["1.0.10"]["by_transport"]["https"] == "deviates"
    text = matrix.text(table)
    rows = {line.split()[0]: line for line in text.splitlines()}
    assert "https DEVIATES, plain ok" in rows["U-ACT-1"] and rows["U-ACT-1"].endswith("<- differs")
    assert "not run" in rows["U-QUEUE-2"]
    assert list(rows)[1:4] == ["U-ACT-1", "U-ACT-10", "U-QUEUE-2"]  # numeric order inside a family
    md = matrix.markdown(table)
    assert "| **U-QUEUE-2** | DEVIATES | ok | not run |" in md
    assert "1.0.1 (/q): exit status 3" in md


def test_html_page_links_each_version():
    a = results("0.9.75", **{"U-QUEUE-2": ("deviates", {"plain": "deviates"})})
    b = results("1.0.10", **{"U-QUEUE-2": ("conforms", {"plain": "conforms"})})
    page = matrix.html_page(matrix.build([("0.9.75", None, 0, a), ("1.0.10", "/p", 0, b)]))
    assert ('<td class="cell s-known" data-state="known" title="deviates, as the baseline expects"><a '
            'href="0.9.75/report.html#rule-U-QUEUE-2">! DEVIATES</a></td>') in page
    assert ('<td class="cell s-conforms" data-state="conforms" title="conforms"><a href="1.0.10/report.html'
            '#rule-U-QUEUE-2">\u2713 ok</a>') in page
    assert "s-fails" in page  # the legend: every state, with its colour class (the page's stylesheet has them)


def test_matrix_html_in_a_chromium_screenshot(tmp_path):
    """Colours that the stylesheet gives, a legend, each rule's promise,
    and links a reader can see."""
    a = results("0.9.75", **{"U-QUEUE-2": ("deviates", {"plain": "deviates"}),
                             "U-ACT-1": ("conforms", {"plain": "conforms"})})
    b = results("1.0.10", **{"U-QUEUE-2": ("conforms", {"plain": "conforms"}),
                             "U-ACT-1": ("deviates", {"plain": "deviates"})})
    b["rules"]["U-ACT-1"]["state"] = "fails"
    page = tmp_path / "matrix.html"
    page.write_text(matrix.html_page(matrix.build([("0.9.75", None, 0, a), ("1.0.10", "/p", 1, b)])))
    pixels, _ = chromium.screenshot(page, (1400, 700))
    seen = chromium.state_pixels(pixels, html_report.STYLE)
    # Two rules x two versions: a cell conforms, one is known, one fails; and
    # the legend's swatches, a few hundred pixels each.
    assert seen["fails"] > 600 and seen["known"] > 600 and seen["conforms"] > 1000, seen
    dom = chromium.dump_dom(page, (1400, 700))
    promise = catalog.load()["U-QUEUE-2"].promise
    assert html_report.html.escape(promise[:30]) in dom.replace("<code>", "`").replace("</code>", "`")
    assert re.findall(r'<tr data-rule="([\w-]+)">', dom) == ["U-ACT-1", "U-QUEUE-2"]
    links = chromium.measure(page, "return [...document.querySelectorAll('a')].map(a => "
                                   "getComputedStyle(a).color + ' ' + a.getAttribute('href'))", (1400, 700))
    assert any(link.startswith("rgb(0, 0, 238) 1.0.10/report.html") for link in links), links  # the runs' line


def test_a_measure_shows_what_each_version_measured():
    def measured(version, value):
        return {"mhd": {"version": version}, "totals": {}, "rules": {"U-QUEUE-3": {
            "kind": "measure", "verdict": "conforms", "by_transport": {"plain": "conforms"},
            "observed": {"t[epoll-plain]": value, "t[tpc-plain]": value}}}}
    table = matrix.build([("0.9.75", None, 0, measured("0.9.75", {"status_line": "HTTP/1.1 500 Internal"})),
                          ("1.0.10", None, 0, measured("1.0.10", {"status_line": "ICY 101 Switching"}))])
    rows = {line.split()[0]: line for line in matrix.text(table).splitlines()}
    assert "HTTP/1.1 500" in rows["U-QUEUE-3"] and "ICY 101" in rows["U-QUEUE-3"]
    assert rows["U-QUEUE-3"].endswith("<- differs")


def test_the_table_of_runs_that_exist_with_their_real_clients(tmp_path, capsys):
    import json

    def run(version, client_verdict):
        folder = tmp_path / "runs" / version
        folder.mkdir(parents=True)
        data = results(version, **{"U-WS-6": (client_verdict, {"https": client_verdict})})
        data["gate"] = {"passed": True}
        data["cases"] = [{"id": f"cases/test_interop.py::t[epoll-https-{c}]", "rules": ["U-WS-6"], "client": c,
                          "mode": "M-EPOLL", "transport": "https", "verdict": v, "outcome": o}
                         for c, v, o in (("chromium", "conforms", "passed"),
                                         ("node-ws", client_verdict, "expected-deviation"
                                          if client_verdict == "deviates" else "passed"))]
        (folder / "results.json").write_text(json.dumps(data))
        return folder
    old, new = run("0.9.75", "deviates"), run("1.0.10", "conforms")
    assert matrix.main([str(old), str(new / "results.json")]) == 0
    md = (tmp_path / "runs" / "matrix.md").read_text()  # beside the runs' folders
    assert "| node-ws | ! 0/1 | \u2713 1/1 |" in md and "| chromium | \u2713 1/1 | \u2713 1/1 |" in md
    page = (tmp_path / "runs" / "matrix.html").read_text()
    assert '<a href="0.9.75/report.html#interop">! 0/1</a>' in page
    assert matrix.main([str(tmp_path / "nothing-here")]) == 2
    assert "cannot read" in capsys.readouterr().err
