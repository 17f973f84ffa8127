"""The verdict of one case (harness/outcome.py): every branch of
classify(). Races: tests/test_races.py; cells, rules and the run:
tests/test_states.py."""

import pytest

from harness.outcome import Expectation, Measure, Phase, classify, summary_of, without_rewrite

PASS = [Phase("setup", "passed"), Phase("call", "passed"), Phase("teardown", "passed")]


def failing(kind, message, when="call"):
    phases = [Phase("setup", "passed")]
    if when == "teardown":
        phases.append(Phase("call", "passed"))
    phases.append(Phase(when, "failed", kind, message))
    return phases


def expect(kind="stall", pattern=r"no byte for"):
    return Expectation("U-ACT-2", "9.9", observed="the connection never ends",
                       signatures=[{"kind": kind, "pattern": pattern}])


STALL = "harness.streams.Stall: no byte for 5.0 s after 10 of 100 bytes\nconnection rid=..."


def test_pass():
    assert classify(PASS)["outcome"] == "passed"
    assert classify(PASS)["verdict"] == "conforms"


def test_expected_deviation_signature_matched():
    got = classify(failing("stall", STALL), expect())
    assert (got["outcome"], got["verdict"], got["kind"]) == ("expected-deviation", "deviates", "stall")
    assert got["summary"] == "no byte for 5.0 s after 10 of 100 bytes"
    assert "baseline 9.9: U-ACT-2 the connection never ends" in got["detail"]


@pytest.mark.parametrize("kind,message", [
    ("stall", "harness.streams.Stall: exchange: no byte moved either way for 5.0 s"),  # another summary
    ("loss", "harness.streams.Loss: the stream ended (fin) after 10 of 100 bytes"),  # another kind
    ("server-death", "harness.server.ServerDied: the reference server killed by signal SIGSEGV"),
    ("leak", "harness.leaks.LeakError: the case left behind 1 open descriptor"),
])
def test_expected_deviation_that_fails_in_another_way_fails_the_gate(kind, message):
    got = classify(failing(kind, message, "teardown" if kind == "leak" else "call"), expect())
    assert (got["outcome"], got["verdict"], got["kind"]) == ("failed", "deviates", kind)
    assert "expects U-ACT-2 to deviate with stall: /no byte for/" in got["detail"]
    assert f"failed otherwise: {kind}: " in got["detail"]


def test_baseline_lists_a_deviation_but_mhd_kept_the_promise():
    got = classify(PASS, expect())
    assert (got["outcome"], got["verdict"]) == ("failed", "conforms")
    assert "kept the promise" in got["detail"]


def test_every_failed_phase_must_be_the_known_deviation():
    """A known deviation in the call, then a daemon that does not stop at
    teardown: the baseline does not know the second, so the case fails."""
    phases = failing("stall", STALL) + [Phase("teardown", "failed", "no-stop",
                                              "harness.server.StopFailure: the reference server (M-TPC, plain) "
                                              "did not stop within 10.0 s of SIGTERM")]
    got = classify(phases, expect())
    assert (got["outcome"], got["kind"]) == ("failed", "no-stop")
    assert "failed otherwise: no-stop: the reference server (M-TPC, plain) did not stop" in got["detail"]
    both = Expectation("U-SUSP-1", "9.9", signatures=[{"kind": "stall", "pattern": "no byte"},
                                                     {"kind": "no-stop", "pattern": "did not stop"}])
    assert classify(phases, both)["outcome"] == "expected-deviation"


def test_what_a_later_phase_saw_stays_in_the_detail():
    phases = failing("stall", STALL) + [Phase("teardown", "failed", "no-stop", "StopFailure: did not stop")]
    got = classify(phases)
    assert (got["outcome"], got["kind"]) == ("failed", "stall")
    assert "also, at teardown (no-stop): StopFailure: did not stop" in got["detail"]


def test_a_skip_inside_the_case_is_untested():
    """pytest.skip() in the call (MHD answered 431: the case cannot ask its
    question) is skipped, never a pass."""
    phases = [Phase("setup", "passed"), Phase("call", "skipped", message="MHD refused the request with 431"),
              Phase("teardown", "passed")]
    got = classify(phases)
    assert (got["outcome"], got["verdict"]) == ("skipped", "untested")


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
    assert summary_of("harness.streams.Stall: no byte for 5.0 s") == "no byte for 5.0 s"
    assert summary_of("harness.server.StopFailure: the reference server did not stop") == (
        "the reference server did not stop")
    assert summary_of("AssertionError: MHD_upgrade_action(CLOSE) returned MHD_NO") == (
        "MHD_upgrade_action(CLOSE) returned MHD_NO")
    assert summary_of("harness.client.Reset: the server reset the connection") == "the server reset the connection"
    assert summary_of("exchange: no class name") == "exchange: no class name"
    assert summary_of("") == ""


def test_pytest_s_rewritten_comparison_is_left_out():
    message = ("AssertionError: 3 of 50 CLOSE actions did not end the connection in order\n"
               "assert not [1, 2, 3]\n +  where [1, 2, 3] = f()")
    assert without_rewrite(message) == "AssertionError: 3 of 50 CLOSE actions did not end the connection in order"
    assert without_rewrite("assert 1 == 2\n +  where 1 = x") == "assert 1 == 2"
