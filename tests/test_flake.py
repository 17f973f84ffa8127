"""harness/reports/flake.py: which variation is a flaky case, and which is known."""

from harness.reports import flake


def results(*cases, rates=None):
    return {"cases": [dict(id=cid, outcome=o, **extra) for cid, o, extra in cases],
            "rules": {r: {"failure_rate": rate} for r, rate in (rates or {}).items()}, "totals": {}}


def test_the_same_outcomes_every_run_pass():
    runs = [(0, results(("a", "passed", {}), ("b", "expected-deviation", {})))] * 3
    table = flake.build(runs)
    assert table["flaky"] == {} and flake.passed(table)


def test_a_case_that_changes_outcome_is_flaky():
    table = flake.build([(0, results(("a", "passed", {}))), (1, results(("a", "failed", {})))])
    assert table["flaky"] == {"a": ["passed", "failed"]}
    assert not flake.passed(table)
    assert "FLAKY a: failed 1x, passed 1x" in flake.text(table)


def test_a_known_intermittent_case_may_vary_and_its_rates_add_up():
    known = {"baseline": "intermittent"}
    table = flake.build([
        (0, results(("s", "passed", known), rates={"U-SUSP-1": {"failures": 0, "attempts": 50}})),
        (0, results(("s", "expected-deviation", known), rates={"U-SUSP-1": {"failures": 3, "attempts": 40}})),
    ])
    assert table["flaky"] == {} and list(table["intermittent"]) == ["s"]
    assert table["failure_rates"] == {"U-SUSP-1": {"failures": 3, "attempts": 90}}
    assert flake.passed(table)


def test_a_case_missing_from_one_run_varied():
    table = flake.build([(0, results(("a", "passed", {}))), (0, results())])
    assert table["flaky"] == {"a": ["passed", None]}


def test_a_run_that_did_not_exit_0_fails_the_check():
    table = flake.build([(0, results(("a", "failed", {}))), (1, results(("a", "failed", {})))])
    assert table["flaky"] == {} and not flake.passed(table)
    assert "runs [2] did not exit 0" in flake.text(table)


def test_a_flaky_case_says_what_its_failed_runs_saw():
    failed = {"failure_kind": "assertion", "summary": "connection 3 did not end in order after CLOSE: open"}
    table = flake.build([(0, results(("a", "passed", {}))), (1, results(("a", "failed", failed))),
                         (1, results(("a", "failed", failed)))])
    assert table["problems"] == {"a": ["assertion: connection 3 did not end in order after CLOSE: open"]}
    assert "    seen: assertion: connection 3 did not end in order after CLOSE: open" in flake.text(table)
