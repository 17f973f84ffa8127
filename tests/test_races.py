"""How a known race is judged (harness/outcome.py): the decision for
every (failures, attempts), the number of attempts derived from the
false-alarm target, the false-alarm probability itself computed exactly,
and a case's verdict as it meets the race run after run."""

import math

import pytest

from harness.outcome import (RUN_FALSE_ALARM, Attempts, Phase, Race, RaceRun, alpha_for, binomial_tail, classify,
                             judge_race, needed, needed_unseen, problem, race_attempts, rate_interval)

ALPHA = 1e-4
LOW, HIGH = 0.5, 0.5  # needed(0.5, 1e-4) = 14: 0.5**14 = 6.1e-5 <= 1e-4 < 0.5**13


def test_the_attempts_needed_follow_from_the_rates_and_alpha():
    assert needed(HIGH, ALPHA) == 14
    assert HIGH ** 14 <= ALPHA < HIGH ** 13
    assert needed(0.75, ALPHA) == 33 and 0.75 ** 33 <= ALPHA < 0.75 ** 32
    assert needed(0.9, 3e-5) == 99
    assert needed(0.9, 2e-5) is None  # 103 > MAX_ATTEMPTS: no case makes that many
    assert needed(1.0, ALPHA) is None  # a race that may strike every time: never told apart from 'always'
    assert needed(0.0, ALPHA) == 1  # a race never seen: the first failure that repeats is not it
    assert needed_unseen(LOW, ALPHA) == 14
    assert needed_unseen(0.05, ALPHA) == 180 and 0.95 ** 180 <= ALPHA < 0.95 ** 179
    assert needed_unseen(0.0, ALPHA) is None


@pytest.mark.parametrize("failures, attempts, more, decision", [
    (0, 1, True, "not-seen"),
    (0, 13, True, "not-seen"),
    (0, 14, True, "no-longer"),      # (1 - 0.5)**14 <= alpha: the race would have struck
    (1, 1, True, "continue"),        # one failure: not yet the race, nor every time
    (1, 1, False, "undecided"),      # ... and no time left to find out
    (13, 13, True, "continue"),
    (13, 13, False, "undecided"),
    (14, 14, True, "always"),        # 0.5**14 <= alpha: not the race
    (15, 15, False, "always"),
    (1, 2, True, "race"),            # one failed, one did not: the known race
    (13, 14, True, "race"),
    (49, 50, False, "race"),
])
def test_decision_table(failures, attempts, more, decision):
    assert judge_race(failures, attempts, LOW, HIGH, ALPHA, more) == decision


def test_rates_near_1_are_the_race_at_the_first_failure():
    """64 connections closed at once: the recorded rates reach 1, no count
    of failures tells the race from 'always', so no case runs again."""
    assert judge_race(1, 1, 0.1, 0.9987, ALPHA, more=True) == "race"
    assert judge_race(1, 1, 0.1, 1.0, ALPHA, more=True) == "race"


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4, 0.5])
def test_false_alarm_probability_within_the_range_is_at_most_alpha(rate):
    """Exactly: 'always' needs the first needed() attempts all to fail, and a
    failure that comes with probability rate <= HIGH does that with
    probability rate**needed <= HIGH**needed <= alpha. Summed over every
    attempt count at which the rule can first say 'always' (it says so at
    the first), by walking the decisions."""
    n = needed(HIGH, ALPHA)
    p_always = 0.0
    p_streak = 1.0  # probability that every attempt so far failed
    for attempts in range(1, n + 5):
        p_streak *= rate
        if judge_race(attempts, attempts, LOW, HIGH, ALPHA, more=True) == "always":
            p_always = p_streak
            break
    assert p_always == pytest.approx(rate ** n)
    assert p_always <= ALPHA


def test_a_run_of_many_race_cases_stays_within_the_run_target():
    """alpha per case is the run's target over the race cases: the union
    bound keeps the run's false-alarm probability at most RUN_FALSE_ALARM."""
    cases = 40
    alpha = alpha_for(cases)
    assert alpha == RUN_FALSE_ALARM / cases
    worst = 1 - (1 - HIGH ** needed(HIGH, alpha)) ** cases  # every case at the highest recorded rate
    assert worst <= RUN_FALSE_ALARM
    assert alpha_for(0) == RUN_FALSE_ALARM


def test_a_failure_every_time_is_caught_and_a_race_is_not():
    """A CLOSE that does nothing fails every attempt: 'always' after
    needed() of them; a race at its highest rate rarely strikes that often."""
    n = needed(0.6, alpha_for(30))
    assert judge_race(n, n, 0.05, 0.6, alpha_for(30)) == "always"
    assert 0.6 ** n <= alpha_for(30)


def test_rate_interval_contains_the_rate_seen_and_narrows_with_attempts():
    low, high = rate_interval(30, 100)
    assert low < 0.3 < high
    assert rate_interval(300, 1000)[1] - rate_interval(300, 1000)[0] < high - low
    assert rate_interval(0, 50)[0] == 0.0 and rate_interval(50, 50)[1] == 1.0
    # Each side holds (1 - confidence) / 2 of the probability.
    assert binomial_tail(30, 100, high) > 0.99 + 0.004
    assert math.isclose(1 - binomial_tail(31, 100, high), 0.005, rel_tol=0.02)
    assert math.isclose(binomial_tail(30, 100, low), 0.005, rel_tol=0.02)


# -- a case that meets the race, run after run -----------------------------------
RACE = Race(name="tls-close-stall", version="9.9", cells=["epoll-https", "pool-*"], rules=["U-ACT-1", "U-ACT-2"],
            signatures=[{"kind": "stall", "pattern": "no end of the stream"}], low=LOW, high=HIGH,
            observed="CLOSE over TLS sometimes never ends the connection")
PASS = [Phase("setup", "passed"), Phase("call", "passed"), Phase("teardown", "passed")]
STRUCK = [Phase("setup", "passed"), Phase("call", "failed", "stall", "Stall: no end of the stream for 2.0 s"),
          Phase("teardown", "passed")]
OTHER = [Phase("setup", "passed"), Phase("call", "failed", "assertion", "AssertionError: CLOSE returned MHD_NO"),
         Phase("teardown", "passed")]


def run(before=Attempts(), repeated=None, more=True):
    return RaceRun(RACE, ALPHA, before, repeated, more)


def test_where_a_race_applies():
    assert RACE.applies(["U-ACT-1"], "epoll-https") and RACE.applies(["U-ACT-2"], "pool-select-https")
    assert not RACE.applies(["U-ACT-1"], "epoll-plain")
    assert not RACE.applies(["U-HALF-1"], "epoll-https")
    assert not RACE.applies(["U-ACT-1"], None)


def test_a_pass_is_not_seen():
    got = classify(PASS, race=run())
    assert (got["outcome"], got["verdict"], got["race"]["decision"]) == ("passed", "conforms", "not-seen")


def test_a_first_failure_asks_for_another_run():
    got = classify(STRUCK, race=run())
    assert got["race"]["decision"] == "continue"
    assert race_attempts(STRUCK, run()) == Attempts(1, 1, 1, "no end of the stream for 2.0 s",
                                                    "Stall: no end of the stream for 2.0 s")


def test_a_pass_after_failures_is_the_known_race():
    before = Attempts(3, 3, 3, "no end of the stream for 2.0 s", "Stall: ...")
    got = classify(PASS, race=run(before))
    assert (got["outcome"], got["verdict"]) == ("expected-deviation", "deviates")
    assert [got["race"][k] for k in ("decision", "failures", "attempts", "runs")] == ["race", 3, 4, 4]
    assert got["summary"].startswith("the known race tls-close-stall struck 3 of 4 attempts: no end of the stream")
    assert problem({"outcome": got["outcome"], "verdict": got["verdict"], "race": got["race"]}) is None


def test_every_attempt_failing_is_always_and_fails_the_gate():
    before = Attempts(13, 13, 13, "no end of the stream for 2.0 s")
    got = classify(STRUCK, race=run(before))
    assert (got["outcome"], got["verdict"], got["race"]["decision"]) == ("failed", "deviates", "always")
    assert "struck 14 of 14 attempts, every one" in got["summary"]
    case = {"outcome": got["outcome"], "verdict": got["verdict"], "race": got["race"], "baseline": "intermittent"}
    assert problem(case) == "too-often"


def test_out_of_time_before_deciding_is_an_error_that_says_so():
    got = classify(STRUCK, race=run(Attempts(5, 5, 5, "x"), more=False))
    assert (got["outcome"], got["race"]["decision"]) == ("error", "undecided")
    assert "14 are needed" in got["summary"]


def test_a_failure_of_another_kind_is_new_whatever_the_race():
    got = classify(OTHER, race=run())
    assert (got["outcome"], got["verdict"], got["kind"]) == ("failed", "deviates", "assertion")
    assert "race" not in got
    assert race_attempts(OTHER, run()) is None


def test_a_case_that_repeats_its_own_attempts_counts_each():
    """U-ACT-1 makes 50 CLOSEs a run: 10 of 30 failed as the race."""
    got = classify(STRUCK, race=run(repeated=(10, 30)))
    assert (got["race"]["decision"], got["race"]["failures"], got["race"]["attempts"]) == ("race", 10, 30)
    got = classify(STRUCK, race=run(repeated=(10, 10)))
    assert got["race"]["decision"] == "continue"
    got = classify(PASS, race=run(repeated=(0, 50)))
    assert got["race"]["decision"] == "no-longer"  # 0.5: 14 attempts without it say 'no longer'
    assert got["outcome"] == "passed" and "perhaps fixed" in got["summary"]


def test_a_measure_that_met_no_race_still_needs_its_recorded_value():
    from harness.outcome import Measure
    got = classify(PASS, measure=Measure(baseline_in_use=True, recorded=False), race=run())
    assert (got["outcome"], got["race"]["decision"]) == ("unrecorded", "not-seen")
    got = classify(PASS, measure=Measure(baseline_in_use=True, recorded=True), race=run())
    assert (got["outcome"], got["verdict"]) == ("passed", "conforms")


def test_setup_only_is_passed_so_far():
    assert classify([Phase("setup", "passed")], race=run())["outcome"] == "passed"
