"""The gate (harness/outcome.py): every branch of classify(), and the
bounded rate of intermittent deviations."""

import pytest

from harness.outcome import Expectation, Measure, Phase, classify, judge_rate, rate, summary_of

PASS = [Phase("setup", "passed"), Phase("call", "passed"), Phase("teardown", "passed")]


def failing(kind, message, when="call"):
    phases = [Phase("setup", "passed")]
    if when == "teardown":
        phases.append(Phase("call", "passed"))
    phases.append(Phase(when, "failed", kind, message))
    return phases


def expect(kind="wire", pattern=r"nothing more received", intermittent=False):
    return Expectation("U-ACT-2", "9.9", observed="the connection never ends",
                       signatures=[{"kind": kind, "pattern": pattern}], intermittent=intermittent)


STALL = "harness.client.WireError: nothing more received within 5.0 s\nconnection rid=..."


def test_pass():
    assert classify(PASS)["outcome"] == "passed"
    assert classify(PASS)["verdict"] == "conforms"


def test_expected_deviation_signature_matched():
    got = classify(failing("wire", STALL), expect())
    assert (got["outcome"], got["verdict"], got["kind"]) == ("expected-deviation", "deviates", "wire")
    assert got["summary"] == "nothing more received within 5.0 s"
    assert "baseline 9.9: U-ACT-2 the connection never ends" in got["detail"]


@pytest.mark.parametrize("kind,message", [
    ("wire", "harness.client.WireError: received 10 bytes before the end, expected 100"),  # another summary
    ("server-death", "harness.server.ServerDied: the reference server killed by signal SIGSEGV"),  # another kind
    ("leak", "harness.leaks.LeakError: the case left behind 1 open descriptor"),
])
def test_expected_deviation_that_fails_in_another_way_fails_the_gate(kind, message):
    got = classify(failing(kind, message, "teardown" if kind == "leak" else "call"), expect())
    assert (got["outcome"], got["verdict"], got["kind"]) == ("failed", "deviates", kind)
    assert "expects U-ACT-2 to deviate with wire: /nothing more received/" in got["detail"]
    assert f"failed otherwise: {kind}: " in got["detail"]


def test_baseline_lists_a_deviation_but_mhd_kept_the_promise():
    got = classify(PASS, expect())
    assert (got["outcome"], got["verdict"]) == ("failed", "conforms")
    assert "kept the promise" in got["detail"]


def test_intermittent_entry_may_pass_or_fail_as_itself():
    assert classify(PASS, expect(intermittent=True))["outcome"] == "passed"
    assert classify(failing("wire", STALL), expect(intermittent=True))["outcome"] == "expected-deviation"
    other = classify(failing("assertion", "AssertionError: CLOSE returned MHD_NO"), expect(intermittent=True))
    assert other["outcome"] == "failed"


def test_intermittent_rate_within_and_above_its_bound():
    bound = {"max_failure_rate": 0.25, "min_attempts": 20}
    assert judge_rate(bound, 5, 20) is None
    assert "6/20 attempts failed (30%); the baseline allows at most 25%" == judge_rate(bound, 6, 20)
    assert judge_rate(bound, 10, 10) is None  # too few attempts to judge


def test_rate_counts_attempts_of_repeating_cases():
    cases = [{"outcome": "expected-deviation", "verdict": "deviates", "observed": {"attempts": 50, "failures": 3}},
             {"outcome": "expected-deviation", "verdict": "deviates"},
             {"outcome": "passed", "verdict": "conforms"},
             {"outcome": "error", "verdict": "untested"}]
    assert rate(cases) == (4, 52)


def test_leak_at_teardown_fails_a_case_that_passed():
    got = classify(failing("leak", "harness.leaks.LeakError: the case left behind 1 open descriptor", "teardown"))
    assert (got["outcome"], got["verdict"], got["kind"]) == ("failed", "deviates", "leak")
    assert got["summary"] == "the case left behind 1 open descriptor"


def test_server_death_is_a_deviation_not_an_error():
    got = classify(failing("server-death", "harness.server.ServerDied: the reference server killed by signal "
                                           "SIGABRT during this case\nstderr, from the crash report on: ..."))
    assert (got["outcome"], got["verdict"], got["kind"]) == ("failed", "deviates", "server-death")


def test_a_server_death_found_at_teardown_decides_a_failed_call():
    phases = [Phase("setup", "passed"), Phase("call", "failed", "wire", "ConnectionRefusedError: [Errno 111] "
                                              "Connection refused"),
              Phase("teardown", "failed", "server-death", "harness.server.ServerDied: the reference server "
                                                          "killed by signal SIGABRT during this case: refserver: "
                                                          "response.c:1950: Assertion failed")]
    got = classify(phases, expect("assertion", "was switched to another protocol"))
    assert (got["outcome"], got["kind"]) == ("failed", "server-death")
    assert got["summary"].startswith("the reference server killed by signal SIGABRT")
    assert "Connection refused" in got["detail"] and "response.c:1950" in got["detail"]
    assert classify(phases, expect("server-death", "killed by signal SIGABRT"))["outcome"] == "expected-deviation"


def test_a_listed_crash_is_expected():
    got = classify(failing("server-death", "ServerDied: the reference server killed by signal SIGSEGV"),
                   expect("server-death", "killed by signal SIG(SEGV|ABRT)"))
    assert got["outcome"] == "expected-deviation"


def test_setup_error_is_untested():
    got = classify([Phase("setup", "failed", "harness", "ServerError: reference server could not start")])
    assert (got["outcome"], got["verdict"]) == ("error", "untested")


def test_a_harness_fault_in_the_call_is_an_error():
    got = classify(failing("harness", "TypeError: unsupported operand"))
    assert (got["outcome"], got["verdict"], got["kind"]) == ("error", "untested", "harness")


def test_skip():
    got = classify([Phase("setup", "skipped", message="no such mode")])
    assert (got["outcome"], got["verdict"], got["detail"]) == ("skipped", "untested", "no such mode")


def test_measure_with_a_recorded_value():
    assert classify(PASS, measure=Measure(baseline_in_use=True, recorded=True))["verdict"] == "conforms"
    changed = classify(failing("measure", "MeasureMismatch: measured 2048; the baseline recorded 16384"),
                       measure=Measure(True, True))
    assert (changed["outcome"], changed["kind"]) == ("failed", "measure")


def test_unrecorded_measure_fails_the_gate_with_a_baseline_and_is_measured_without():
    got = classify(PASS, measure=Measure(baseline_in_use=True, recorded=False))
    assert (got["outcome"], got["verdict"]) == ("unrecorded", "measured")
    got = classify(PASS, measure=Measure(baseline_in_use=False, recorded=False))
    assert (got["outcome"], got["verdict"]) == ("passed", "measured")


def test_summary_drops_the_class_name_and_keeps_one_line():
    assert summary_of("harness.client.WireError: exchange: 0 bytes\nmore") == "exchange: 0 bytes"
    assert summary_of("AssertionError: MHD_upgrade_action(CLOSE) returned MHD_NO") == (
        "MHD_upgrade_action(CLOSE) returned MHD_NO")
    assert summary_of("harness.client.Reset: the server reset the connection") == "the server reset the connection"
    assert summary_of("exchange: no class name") == "exchange: no class name"
    assert summary_of("") == ""
