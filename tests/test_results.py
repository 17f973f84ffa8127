"""Turning case records into rule verdicts."""

from harness import catalog
from harness.reports import results


def test_rule_verdict():
    assert results.rule_verdict([]) == "untested"
    assert results.rule_verdict(["untested"]) == "untested"
    assert results.rule_verdict(["conforms", "untested"]) == "conforms"
    assert results.rule_verdict(["conforms", "deviates"]) == "deviates"


def test_aggregate_per_rule_and_transport():
    cat = {r.id: r for r in catalog.load().values() if r.id in ("U-HDR-1", "U-EXTRA-3", "U-ACT-1")}
    cases = [
        {"id": "c::t1[a-plain]", "rules": ["U-HDR-1"], "transport": "plain", "verdict": "deviates",
         "outcome": "expected-deviation"},
        {"id": "c::t1[b-plain]", "rules": ["U-HDR-1"], "transport": "plain", "verdict": "conforms",
         "outcome": "passed"},
        {"id": "c::t2[a-plain]", "rules": ["U-EXTRA-3"], "transport": "plain", "verdict": "conforms",
         "outcome": "passed", "observed": 1923},
    ]
    rules = results.aggregate(cases, cat, ("plain", "https"))
    assert rules["U-HDR-1"]["verdict"] == "deviates"
    assert rules["U-HDR-1"]["by_transport"] == {"plain": "deviates", "https": "untested"}
    assert rules["U-HDR-1"]["outcomes"] == {"passed": 1, "expected-deviation": 1}
    assert rules["U-EXTRA-3"]["observed"] == {"t2[a-plain]": 1923}
    assert rules["U-ACT-1"]["verdict"] == "untested"


def test_known_intermittent_rule_that_conformed_says_so():
    cat = {r.id: r for r in catalog.load().values() if r.id == "U-LOAD-1"}
    cases = [{"id": "c::t[tpc-plain]", "rules": ["U-LOAD-1"], "transport": "plain", "verdict": "conforms",
              "outcome": "passed", "baseline": "intermittent"}]
    rules = results.aggregate(cases, cat, ("plain",))
    assert rules["U-LOAD-1"]["intermittent"] is True
    line = results.terminal_lines({"rules": rules})[0]
    assert "conforms: U-LOAD-1 (known intermittent deviation, not seen this run)" in line
    cases[0]["baseline"] = "deviation"
    assert "intermittent" not in results.aggregate(cases, cat, ("plain",))["U-LOAD-1"]


def test_console_tells_new_deviations_from_known_and_lists_the_cases():
    cat = {r.id: r for r in catalog.load().values() if r.id in ("U-HDR-1", "U-ACT-1", "U-EXTRA-1")}
    cases = [
        {"id": "c::t1[epoll-plain]", "rules": ["U-HDR-1"], "transport": "plain", "verdict": "deviates",
         "outcome": "expected-deviation", "baseline": "deviation", "summary": "known way"},
        {"id": "c::t2[epoll-plain]", "rules": ["U-EXTRA-1"], "transport": "plain", "verdict": "deviates",
         "outcome": "failed", "summary": "MHD passed extra_in_size 0"},
        {"id": "c::t3[epoll-plain]", "rules": ["U-ACT-1"], "transport": "plain", "verdict": "conforms",
         "outcome": "passed"},
    ]
    data = results.build(cases, cat, {"version": "x"}, 1.0, ("plain",), None)
    text = "\n".join(results.terminal_lines(data))
    lines = results.misbehaving_lines(data)
    assert "FAILS THE GATE: U-EXTRA-1" in text
    assert "known deviation: U-HDR-1" in text
    assert "conforms: U-ACT-1" in text
    assert lines[0] == "cases that did not behave (1):"
    assert lines[1] == "  t2[epoll-plain] [U-EXTRA-1] new deviation: MHD passed extra_in_size 0"
