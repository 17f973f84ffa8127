"""Baseline matching and updating."""

import re

from harness import baseline


import json

import pytest

SIG = [{"kind": "assertion", "pattern": "summary"}]


def make(deviations=None, measures=None):
    return baseline.Baseline({"schema": 2, "mhd_version": "9.9", "deviations": deviations or {},
                              "measures": measures or {}}, None)


def test_brackets_in_case_names_are_literal():
    assert baseline.matches("test_x[epoll-plain]", "test_x[epoll-plain]")
    assert not baseline.matches("test_x[e]", "test_x[epoll-plain]")
    assert not baseline.matches("test_x[p]", "test_x[pe]")  # no character class


def test_wildcards():
    assert baseline.matches("test_x[ext-epoll-plain]", "test_x[*-plain]")
    assert baseline.matches("test_x[tpc-plain]", "test_x[tp?-plain]")
    assert not baseline.matches("test_x[tpc-plain]x", "test_x[*-plain]")


def test_expected_deviation_needs_rule_and_case():
    b = make({"U-HDR-1": {"observed": "o", "evidence": "e", "cases": ["test_h[*]"]}})
    assert b.expected_deviation("test_h[epoll-plain]", ["U-HDR-1"])[0] == "U-HDR-1"
    assert b.expected_deviation("test_h[epoll-plain]", ["U-HDR-2"]) is None
    assert b.expected_deviation("test_other[epoll-plain]", ["U-HDR-1"]) is None


def case(name, rules, verdict, outcome, observed=None, kind="promise", failure_kind="assertion"):
    c = {"id": f"cases/test_f.py::{name}", "rules": rules, "verdict": verdict, "outcome": outcome,
         "kind": kind, "summary": f"{name} summary 12 of 50", "failure_kind": failure_kind}
    if observed is not None:
        c["observed"] = observed
    return c


def test_update_keeps_unrun_cases_and_reviewed_text():
    b = make({"U-HDR-1": {"observed": "reviewed", "evidence": "reviewed ev", "signatures": SIG,
                          "cases": ["test_h[a]", "test_h[b]", "test_h[c]"]}},
             {"test_m[a]": 1, "test_m[b]": 2})
    new = baseline.updated(b, [
        case("test_h[a]", ["U-HDR-1"], "deviates", "expected-deviation"),   # still deviates
        case("test_h[b]", ["U-HDR-1"], "conforms", "failed"),               # now conforms: dropped
        case("test_q[a]", ["U-QUEUE-1"], "deviates", "failed"),             # new deviation
        case("test_m[a]", ["U-EXTRA-3"], "deviates", "failed", observed=5, kind="measure", failure_kind="measure"),
    ])
    assert new["deviations"]["U-HDR-1"] == {"observed": "reviewed", "evidence": "reviewed ev", "signatures": SIG,
                                            "cases": ["test_h[a]", "test_h[c]"]}
    assert new["deviations"]["U-QUEUE-1"]["cases"] == ["test_q[a]"]
    # The new deviation's signature is proposed from its summary, numbers left open.
    [sig] = new["deviations"]["U-QUEUE-1"]["signatures"]
    assert sig["kind"] == "assertion"
    assert re.search(sig["pattern"], "test_q[a] summary 3 of 49")
    assert new["measures"] == {"test_m[a]": 5, "test_m[b]": 2}
    assert "U-EXTRA-3" not in new["deviations"]  # a changed measure is a value, not a deviation


def test_load_refuses_other_schema(tmp_path):
    p = tmp_path / "b.json"
    p.write_text('{"schema": 99}')
    try:
        baseline.Baseline.load(p)
    except baseline.BaselineError as e:
        assert "schema" in str(e)
    else:
        raise AssertionError("a baseline of another schema was accepted")


def test_update_records_only_measure_values():
    b = make()
    new = baseline.updated(b, [
        case("test_s[a]", ["U-SUSP-1"], "conforms", "passed", observed={"failures": 0}),
        case("test_m[a]", ["U-EXTRA-3"], "conforms", "passed", observed=7, kind="measure"),
    ])
    assert new["measures"] == {"test_m[a]": 7}


def test_update_keeps_an_intermittent_entry_and_proposes_its_bound():
    b = make({"U-ACT-1": {"observed": "o", "evidence": "e", "signatures": SIG, "cases": ["test_a[*]"],
                          "intermittent": {"max_failure_rate": 0.1, "min_attempts": 20}}})
    new = baseline.updated(b, [
        case("test_a[x]", ["U-ACT-1"], "deviates", "expected-deviation", observed={"attempts": 50, "failures": 10}),
        case("test_a[y]", ["U-ACT-1"], "conforms", "passed", observed={"attempts": 50, "failures": 0}),
    ])
    entry = new["deviations"]["U-ACT-1"]
    assert entry["cases"] == ["test_a[*]", "test_a[x]"]  # the one that passed this time stays listed
    assert entry["intermittent"] == {"max_failure_rate": 0.25, "min_attempts": 20}  # 10/100: twice that, +5 %


@pytest.mark.parametrize("entry,message", [
    ({"cases": ["t[*]"]}, "no failure signatures"),
    ({"cases": ["t[*]"], "signatures": [{"kind": "oops", "pattern": "x"}]}, "signature kind 'oops'"),
    ({"cases": ["t[*]"], "signatures": [{"kind": "wire", "pattern": "("}]}, "signature pattern"),
    ({"cases": ["t[*]"], "signatures": SIG, "intermittent": True}, "'intermittent' must be"),
])
def test_load_refuses_an_entry_that_cannot_gate(tmp_path, entry, message):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 2, "mhd_version": "9.9", "deviations": {"U-ACT-1": entry}}))
    with pytest.raises(baseline.BaselineError, match=message):
        baseline.Baseline.load(p)


def test_schema_1_is_read_only_to_be_rewritten(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 1, "mhd_version": "9.9",
                             "deviations": {"U-ACT-1": {"observed": "o", "cases": ["t[*]"], "intermittent": True}}}))
    with pytest.raises(baseline.BaselineError, match="--update-baseline"):
        baseline.Baseline.load(p)
    old = baseline.Baseline.load(p, migrate=True)
    assert old.expectation("t[x]", ["U-ACT-1"]).signatures == []  # matches no failure: each must be looked at
