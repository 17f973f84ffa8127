"""./conformance compare: what changed between two runs."""

import json

from harness import compare


def run(version, rules, cases=()):
    return {"mhd": {"version": version}, "rules": rules, "cases": list(cases)}


def rule(plain=None, https=None, **extra):
    by = {t: v for t, v in (("plain", plain), ("https", https)) if v}
    return dict({"by_transport": by}, **extra)


def measure_case(name, value):
    return {"id": f"cases/test_x.py::{name}", "rules": ["U-EXTRA-3"], "kind": "measure", "observed": value}


def kinds(found):
    return sorted((kind, r, where) for kind, r, where, _, _ in found)


def test_regression_fix_and_transport_apart():
    a = run("0.9.75", {"U-ACT-1": rule("conforms", "conforms"), "U-HDR-1": rule("deviates", "deviates")})
    b = run("1.0.10", {"U-ACT-1": rule("conforms", "deviates"), "U-HDR-1": rule("conforms", "deviates")})
    assert kinds(compare.changes(a, b)) == [("fix", "U-HDR-1", "plain"), ("regression", "U-ACT-1", "https")]


def test_untested_is_not_a_verdict():
    a = run("a", {"U-ACT-1": rule("conforms", "untested"), "U-SOCK-3": rule(https="conforms")})
    b = run("b", {"U-ACT-1": rule("untested", "deviates")})
    assert kinds(compare.changes(a, b)) == [("only in A", "U-ACT-1", "plain"), ("only in A", "U-SOCK-3", "https"),
                                            ("only in B", "U-ACT-1", "https")]


def test_intermittent_in_both_is_not_a_regression():
    a = run("a", {"U-LOAD-1": rule("conforms", intermittent=True)})
    b = run("b", {"U-LOAD-1": rule("deviates", intermittent=True)})
    assert kinds(compare.changes(a, b)) == [("intermittent", "U-LOAD-1", "plain")]
    b = run("b", {"U-LOAD-1": rule("deviates")})
    assert kinds(compare.changes(a, b)) == [("regression", "U-LOAD-1", "plain")]


def test_changed_measures_by_case():
    a = run("a", {}, [measure_case("t[epoll-plain]", 16384), measure_case("t[tpc-plain]", 2048)])
    b = run("b", {}, [measure_case("t[epoll-plain]", 16384), measure_case("t[tpc-plain]", 4096),
                      measure_case("t[poll-plain]", 1)])
    found = compare.changes(a, b)
    assert found == [("measure changed", "U-EXTRA-3", "t[tpc-plain]", 2048, 4096)]


def test_exit_status_and_markdown(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run("0.9.75", {"U-ACT-1": rule("conforms")})))
    b.write_text(json.dumps(run("1.0.10", {"U-ACT-1": rule("deviates")})))
    md = tmp_path / "summary.md"
    assert compare.main([str(a), str(b), "--markdown", str(md)]) == 1
    assert "regression (1):" in capsys.readouterr().out
    assert "| regression | U-ACT-1 | plain | conforms | deviates |" in md.read_text()
    assert compare.main([str(a), str(a)]) == 0
    assert "no change" in capsys.readouterr().out


def test_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert compare.main([str(bad), str(tmp_path / "missing.json")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    bad.write_text("[]")
    assert compare.main([str(bad), str(bad)]) == 2


def test_different_schemas_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(dict(run("a", {}), schema=1)))
    b.write_text(json.dumps(dict(run("b", {}), schema=2)))
    assert compare.main([str(a), str(b)]) == 2
    assert "different schema versions" in capsys.readouterr().err
