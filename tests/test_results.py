"""Turning case records into rule verdicts."""

from harness import catalog
from harness.reports import results


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


def test_a_rule_that_met_a_known_race_says_how_often():
    cat = {r.id: r for r in catalog.load().values() if r.id == "U-ACT-1"}
    race = {"name": "tls-close-stall", "decision": "race", "failures": 3, "attempts": 50, "runs": 1, "low": 0.05,
            "high": 0.6, "needed": 20, "alpha": 1e-4}
    cases = [{"id": "c::t[epoll-https]", "rules": ["U-ACT-1"], "transport": "https", "verdict": "deviates",
              "outcome": "expected-deviation", "baseline": "intermittent", "race": race},
             {"id": "c::t[pool-https]", "rules": ["U-ACT-1"], "transport": "https", "verdict": "conforms",
              "outcome": "passed", "baseline": "intermittent", "race": dict(race, decision="not-seen", failures=0)}]
    rules = results.aggregate(cases, cat, ("https",))
    assert rules["U-ACT-1"]["intermittent"] is True
    assert rules["U-ACT-1"]["intermittent_rate"] == {"failures": 3, "attempts": 100, "low": 0.05, "high": 0.6,
                                                     "exceeded": False}
    line = results.terminal_lines({"rules": rules, "cases": cases})[0]
    assert "known deviation: U-ACT-1 (known race: 3/100 attempts struck)" in line
    cases[0]["race"] = dict(race, decision="always", failures=20, attempts=20)
    cases[0]["outcome"] = "failed"
    rules = results.aggregate(cases, cat, ("https",))
    assert rules["U-ACT-1"]["intermittent_rate"]["exceeded"] is True
    line = results.terminal_lines({"rules": rules, "cases": cases})[0]
    assert "FAILS THE GATE: U-ACT-1 (known race: 20/70 attempts struck; EVERY attempt in 1 case(s))" in line


def test_a_skipped_case_is_untested_everywhere():
    cat = {r.id: r for r in catalog.load().values() if r.id == "U-CB-7"}
    cases = [{"id": "c::t[epoll-plain-mem-1k]", "rules": ["U-CB-7"], "transport": "plain", "mode": "M-EPOLL",
              "verdict": "untested", "outcome": "skipped"}]
    data = results.build(cases, cat, {"version": "x"}, 1.0, ("plain",), None)
    assert data["rules"]["U-CB-7"]["state"] == "untested"
    assert data["totals"]["skipped"] == 1 and data["totals"]["passed"] == 0
    assert "untested: U-CB-7" in "\n".join(results.terminal_lines(data))
    assert "1 skipped (untested)" in data["gate"]["headline"]


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


def test_a_red_run_says_what_to_rerun_and_when_to_give_more_time():
    def bad(i, kind):
        return {"id": f"cases/test_x.py::t{i}[epoll-https]", "rules": ["U-ACT-1"], "verdict": "deviates",
                "outcome": "failed", "failure_kind": kind, "problem": "new"}
    data = {"cases": [bad(0, "assertion"), bad(1, "stall"),
                      {"id": "cases/test_x.py::t2[epoll-plain]", "outcome": "passed", "verdict": "conforms"}]}
    lines = results.next_steps(data, "./conformance --mhd /opt/mhd")
    assert lines[0] == ("next: rerun exactly the 2 cases that did not behave: ./conformance --mhd /opt/mhd -- "
                        "'cases/test_x.py::t0[epoll-https]' 'cases/test_x.py::t1[epoll-https]'")
    assert "1 of them waited out a deadline (stall)" in lines[1] and "CONFORMANCE_TIMEOUT_FACTOR=2 " in lines[1]
    many = {"cases": [bad(i, "assertion") for i in range(results.RERUN_IDS + 1)]}
    assert results.next_steps(many, "./conformance")[0].endswith(
        "./conformance -- --last-failed --last-failed-no-failures none")
    assert results.next_steps({"cases": data["cases"][2:]}, "./conformance") == []
