"""./conformance compare: what changed between two runs."""

import json

from harness.reports import compare


def run(version, cases=()):
    return {"mhd": {"version": version}, "rules": {}, "cases": list(cases)}


def cell(rule, transport, mode, verdict, outcome=None, **extra):
    outcome = outcome or {"conforms": "passed", "deviates": "failed", "untested": "error"}[verdict]
    return dict({"id": f"cases/test_x.py::t[{mode}-{transport}]", "rules": [rule], "transport": transport,
                 "mode": f"M-{mode.upper()}", "kind": "promise", "verdict": verdict, "outcome": outcome}, **extra)


def measure_case(name, value, verdict="conforms", outcome="passed", **extra):
    mode, _, transport = name[name.index("[") + 1:-1].partition("-")
    case = {"id": f"cases/test_x.py::{name}", "rules": ["U-EXTRA-3"], "kind": "measure", "verdict": verdict,
            "outcome": outcome, "mode": f"M-{mode.upper()}", "transport": transport, **extra}
    if value is not None:
        case["observed"] = value
    return case


def kinds(found):
    return sorted((kind, r, where) for kind, r, where, _, _ in found)


def test_regression_fix_per_transport_and_mode():
    a = run("0.9.75", [cell("U-ACT-1", "plain", "epoll", "conforms"), cell("U-ACT-1", "https", "epoll", "conforms"),
                       cell("U-HDR-1", "plain", "epoll", "deviates")])
    b = run("1.0.10", [cell("U-ACT-1", "plain", "epoll", "conforms"), cell("U-ACT-1", "https", "epoll", "deviates"),
                       cell("U-HDR-1", "plain", "epoll", "conforms")])
    assert kinds(compare.changes(a, b)) == [("fix", "U-HDR-1", "plain: epoll"),
                                            ("regression", "U-ACT-1", "https: epoll")]


def test_a_new_mode_of_a_rule_that_already_deviated_is_a_regression():
    a = run("a", [cell("U-HALF-1", "https", "epoll", "deviates"), cell("U-HALF-1", "https", "tpc", "conforms"),
                  cell("U-HALF-1", "https", "pool", "conforms")])
    b = run("b", [cell("U-HALF-1", "https", "epoll", "deviates"), cell("U-HALF-1", "https", "tpc", "deviates"),
                  cell("U-HALF-1", "https", "pool", "deviates")])
    found = compare.changes(a, b)
    assert kinds(found) == [("regression", "U-HALF-1", "https: pool, tpc"),  # in the catalogue's order
                            ("still deviates", "U-HALF-1", "https: epoll")]  # what B has yet to fix


def test_a_cell_that_conformed_and_now_errs_is_lost():
    a = run("a", [cell("U-ACT-1", "plain", "epoll", "conforms"), cell("U-SOCK-3", "https", "tpc", "conforms")])
    b = run("b", [cell("U-ACT-1", "plain", "epoll", "untested")])
    assert kinds(compare.changes(a, b)) == [("lost", "U-ACT-1", "plain: epoll"),
                                            ("only in A", "U-SOCK-3", "https: tpc")]


def test_intermittent_in_both_is_not_a_regression():
    a = run("a", [cell("U-LOAD-1", "plain", "tpc", "conforms", baseline="intermittent")])
    b = run("b", [cell("U-LOAD-1", "plain", "tpc", "deviates", "expected-deviation", baseline="intermittent")])
    assert kinds(compare.changes(a, b)) == [("intermittent", "U-LOAD-1", "plain: tpc")]
    b = run("b", [cell("U-LOAD-1", "plain", "tpc", "deviates")])
    assert kinds(compare.changes(a, b)) == [("regression", "U-LOAD-1", "plain: tpc")]


def test_changed_measures_by_case():
    a = run("a", [measure_case("t[epoll-plain]", 16384), measure_case("t[tpc-plain]", 2048)])
    b = run("b", [measure_case("t[epoll-plain]", 16384), measure_case("t[tpc-plain]", 4096),
                  measure_case("t[poll-plain]", 1)])
    found = compare.changes(a, b)
    assert found == [("only in B", "U-EXTRA-3", "plain: poll", "not run", "conforms"),
                     ("measure changed", "U-EXTRA-3", "t[tpc-plain]", 2048, 4096)]


def test_a_measure_that_no_longer_measures_is_a_regression():
    """A measure case that fails in B (a crash, a timeout: no value) while
    A measured is a regression; a value that differs from B's baseline is
    still a measured value, compared as such."""
    a = run("a", [measure_case("t[epoll-plain]", 16384), measure_case("t[tpc-plain]", 2048)])
    b = run("b", [measure_case("t[epoll-plain]", None, "deviates", "failed", failure_kind="server-death"),
                  measure_case("t[tpc-plain]", 4096, "deviates", "failed", failure_kind="measure")])
    found = compare.changes(a, b)
    assert kinds(found) == [("measure changed", "U-EXTRA-3", "t[tpc-plain]"),
                            ("regression", "U-EXTRA-3", "plain: epoll")]


def test_exit_status_and_markdown(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run("0.9.75", [cell("U-ACT-1", "plain", "epoll", "conforms")])))
    b.write_text(json.dumps(run("1.0.10", [cell("U-ACT-1", "plain", "epoll", "deviates")])))
    md = tmp_path / "summary.md"
    assert compare.main([str(a), str(b), "--markdown", str(md)]) == 1
    assert "regression (1):" in capsys.readouterr().out
    assert "| regression | U-ACT-1 | plain: epoll | conforms | deviates |" in md.read_text()
    assert compare.main([str(a), str(a)]) == 0
    assert "no change" in capsys.readouterr().out


def test_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert compare.main([str(bad), str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad.write_text("[]")
    assert compare.main([str(bad), str(bad)]) == 2


def test_a_report_folder_is_read_as_its_results(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(run(name, [cell("U-ACT-1", "plain", "epoll",
                                                                                   "conforms")])))
    assert compare.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0


def test_one_line_per_changed_measure_not_per_case():
    cells = [f"t[{m}-{t}]" for m in ("epoll", "poll") for t in ("plain", "https")]
    a = run("a", [measure_case(c, "500") for c in cells])
    b = run("b", [measure_case(c, "101") for c in cells])
    assert [f[2] for f in compare.changes(a, b)] == ["t in 4 cells"]


def test_different_schemas_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(dict(run("a"), schema=1)))
    b.write_text(json.dumps(dict(run("b"), schema=2)))
    assert compare.main([str(a), str(b)]) == 2
    assert "different schema versions" in capsys.readouterr().err
