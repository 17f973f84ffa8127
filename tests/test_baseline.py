"""Baseline matching and updating."""

import re

from harness import baseline, outcome


import json

import pytest

SIG = [{"kind": "assertion", "pattern": "summary"}]


def make(deviations=None, measures=None, races=None):
    return baseline.Baseline({"schema": 3, "mhd_version": "9.9", "deviations": deviations or {},
                              "races": races or {}, "measures": measures or {}}, None)


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
    b = make({"U-HDR-1": {"observed": "reviewed", "workaround": "reviewed wa", "evidence": "reviewed ev",
                          "signatures": SIG, "cases": ["test_h[a]", "test_h[b]", "test_h[c]"]}},
             {"test_m[a]": 1, "test_m[b]": 2})
    new = baseline.updated(b, [
        case("test_h[a]", ["U-HDR-1"], "deviates", "expected-deviation"),   # still deviates
        case("test_h[b]", ["U-HDR-1"], "conforms", "failed"),               # now conforms: dropped
        case("test_q[a]", ["U-QUEUE-1"], "deviates", "failed"),             # new deviation
        case("test_m[a]", ["U-EXTRA-3"], "deviates", "failed", observed=5, kind="measure", failure_kind="measure"),
    ])
    assert new["deviations"]["U-HDR-1"] == {"observed": "reviewed", "workaround": "reviewed wa",
                                            "evidence": "reviewed ev", "signatures": SIG,
                                            "cases": ["test_h[a]", "test_h[c]"]}
    assert new["deviations"]["U-QUEUE-1"]["cases"] == ["test_q[a]"]
    # The new deviation's workaround is left for someone to write: a file
    # holding it is read only to be rewritten.
    assert list(new["deviations"]["U-QUEUE-1"])[:2] == ["observed", "workaround"]
    assert new["deviations"]["U-QUEUE-1"]["workaround"] == baseline.WORKAROUND_TO_WRITE
    assert baseline.to_write(new) == ["U-QUEUE-1"]
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


RACE = {"observed": "o", "workaround": "w", "evidence": "e", "cells": ["epoll-https", "pool*-https"], "rules": ["U-ACT-1", "U-ACT-2"],
        "signatures": [{"kind": "stall", "pattern": "no end"}], "rates": {"low": 0.1, "high": 0.5}, "runs": [[5, 50]]}


def raced(name, failures, attempts, decision="race"):
    c = case(name, ["U-ACT-1"], "deviates" if failures else "conforms",
             "expected-deviation" if failures else "passed")
    c["race"] = {"name": "stall", "decision": decision, "failures": failures, "attempts": attempts}
    return c


def test_a_race_applies_in_its_cells_to_its_rules():
    b = make(races={"stall": RACE})
    race = b.race(["U-ACT-2"], "pool-select-https")
    assert (race.name, race.low, race.high) == ("stall", 0.1, 0.5)
    assert b.race(["U-ACT-2"], "pool-plain") is None
    assert b.race(["U-HALF-1"], "epoll-https") is None


def test_update_proposes_a_race_s_rates_from_every_case_of_every_run_it_is_given():
    b = make(races={"stall": RACE})
    runs = [[raced("test_a[epoll-https]", 10, 30), raced("test_a[pool-https]", 0, 50, "not-seen")],
            [raced("test_a[epoll-https]", 30, 40)]]
    new = baseline.updated(b, runs)
    entry = new["races"]["stall"]
    assert entry["runs"] == [[5, 50], [10, 30], [0, 50], [30, 40]]  # the old pair, then one per case
    assert (entry["cells"], entry["signatures"], entry["observed"], entry["workaround"]) == (
        RACE["cells"], RACE["signatures"], "o", "w")
    lows, highs = zip(*(outcome.rate_interval(f, a, baseline.RANGE_CONFIDENCE) for f, a in entry["runs"]))
    assert entry["rates"] == {"low": round(min(lows), 4), "high": round(max(highs), 4)}
    assert entry["rates"]["low"] < 5 / 50 and entry["rates"]["high"] > 30 / 40
    assert new["deviations"] == {}  # the race's cases are not deviations of their own


def test_a_case_that_deviated_in_some_runs_only_becomes_a_proposed_race():
    def one(verdict):
        c = case("test_n[epoll-https]", ["U-NOTIFY-1"], verdict, "failed" if verdict == "deviates" else "passed")
        return dict(c, mode="M-EPOLL", transport="https", failure_kind="timeout")
    new = baseline.updated(make(), [[one("deviates")], [one("conforms")], [one("conforms")]])
    [(name, race)] = new["races"].items()
    assert name == "u-notify-1-now-and-then"
    assert (race["cells"], race["rules"], race["runs"]) == (["epoll-https"], ["U-NOTIFY-1"], [[1, 1], [0, 1], [0, 1]])
    assert race["signatures"][0]["kind"] == "timeout"
    assert race["workaround"] == baseline.WORKAROUND_TO_WRITE
    assert "U-NOTIFY-1" not in new["deviations"]


def test_schema_2_intermittent_entries_migrate_to_races(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 2, "mhd_version": "9.9", "deviations": {"U-ACT-1": [
        {"observed": "always", "signatures": SIG, "cases": ["test_a[ext-epoll-https]"]},
        {"observed": "sometimes", "signatures": SIG, "cases": ["test_a[epoll-https]", "test_a[pool-https-1MiB]"],
         "intermittent": {"max_failure_rate": 0.4, "min_attempts": 50}}]}}))
    with pytest.raises(baseline.BaselineError, match="intermittent entries became races"):
        baseline.Baseline.load(p)
    old = baseline.Baseline.load(p, migrate=True)
    assert old.expectation("test_a[ext-epoll-https]", ["U-ACT-1"]).observed == "always"
    race = old.race(["U-ACT-1"], "pool-https")
    assert (race.cells, race.high, race.observed) == (["epoll-https", "pool-https"], 0.4, "sometimes")


@pytest.mark.parametrize("entry,message", [
    ({"cases": ["t[*]"]}, "no failure signatures"),
    ({"cases": ["t[*]"], "signatures": [{"kind": "oops", "pattern": "x"}]}, "signature kind 'oops'"),
    ({"cases": ["t[*]"], "signatures": [{"kind": "wire", "pattern": "("}]}, "signature pattern"),
    ({"cases": ["t[*]"], "signatures": SIG, "intermittent": True}, "'intermittent' entries became races"),
])
def test_load_refuses_an_entry_that_cannot_gate(tmp_path, entry, message):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 3, "mhd_version": "9.9", "deviations": {"U-ACT-1": entry}}))
    with pytest.raises(baseline.BaselineError, match=message):
        baseline.Baseline.load(p)


@pytest.mark.parametrize("race,message", [
    (dict(RACE, cells=[]), "'cells' must be a non-empty list"),
    (dict(RACE, rules="U-ACT-1"), "'rules' must be a non-empty list"),
    (dict(RACE, rates={"low": 0.6, "high": 0.5}), "'rates' must be"),
    (dict(RACE, signatures=[]), "no failure signatures"),
])
def test_load_refuses_a_race_that_cannot_be_judged(tmp_path, race, message):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 3, "mhd_version": "9.9", "races": {"stall": race}}))
    with pytest.raises(baseline.BaselineError, match=message):
        baseline.Baseline.load(p)


def test_schema_1_is_read_only_to_be_rewritten(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 1, "mhd_version": "9.9",
                             "deviations": {"U-ACT-1": {"observed": "o", "cases": ["t[*]"]}}}))
    with pytest.raises(baseline.BaselineError, match="--update-baseline"):
        baseline.Baseline.load(p)
    old = baseline.Baseline.load(p, migrate=True)
    assert old.expectation("t[x]", ["U-ACT-1"]).signatures == []  # matches no failure: each must be looked at


def test_a_pattern_narrows_to_the_cases_that_still_deviate_and_keeps_its_text():
    b = make({"U-HALF-1": {"observed": "reviewed", "workaround": "wa", "evidence": "ev", "signatures": SIG,
                           "cases": ["test_h[*-https]"]}})
    new = baseline.updated(b, [case("test_h[epoll-https]", ["U-HALF-1"], "deviates", "expected-deviation"),
                               case("test_h[tpc-https]", ["U-HALF-1"], "conforms", "failed")])
    assert new["deviations"]["U-HALF-1"] == {"observed": "reviewed", "workaround": "wa", "evidence": "ev",
                                             "signatures": SIG, "cases": ["test_h[epoll-https]"]}
    still = baseline.updated(b, [case("test_h[epoll-https]", ["U-HALF-1"], "deviates", "expected-deviation")])
    assert still["deviations"]["U-HALF-1"]["cases"] == ["test_h[*-https]"]


def test_a_signature_that_no_longer_matches_is_dropped_and_a_new_one_proposed():
    old = [{"kind": "assertion", "pattern": "the client saw 'open'"}]
    b = make({"U-HALF-1": {"observed": "o", "evidence": "e", "signatures": old, "cases": ["test_h[*]"]}})
    seen = dict(case("test_h[epoll-https]", ["U-HALF-1"], "deviates", "failed"), failure_kind="stall",
                summary="no byte and no end of the stream for 2.0 s after all 64 bytes")
    [sig] = baseline.updated(b, [seen])["deviations"]["U-HALF-1"]["signatures"]
    assert sig["kind"] == "stall" and re.search(sig["pattern"], seen["summary"])


SHIPPED = sorted(baseline.BASELINES.glob("[0-9]*.json"))


def test_the_three_version_baselines_are_shipped():
    assert [p.name for p in SHIPPED] == ["0.9.75.json", "1.0.1.json", "1.0.10.json"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_entry_has_a_workaround(path):
    b = baseline.Baseline.load(path)  # refuses an entry without one
    data = json.loads(path.read_text())
    assert baseline.to_write(data) == []
    for rule, value in b.deviations.items():
        for entry in baseline.entries(value):
            assert list(entry).index("workaround") == list(entry).index("observed") + 1, rule
    for name, race in b.races.items():
        assert list(race).index("workaround") == list(race).index("observed") + 1, name


@pytest.mark.parametrize("workaround", [None, "", "  ", 3])
def test_load_refuses_an_entry_without_a_workaround(tmp_path, workaround):
    entry = {"observed": "o", "evidence": "e", "signatures": SIG, "cases": ["t[*]"]}
    if workaround is not None:
        entry["workaround"] = workaround
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 3, "mhd_version": "9.9", "deviations": {"U-ACT-1": [
        dict(entry, workaround="w"), entry]}}))
    with pytest.raises(baseline.BaselineError, match=rf"^{re.escape(str(p))}: U-ACT-1 has no 'workaround': write one"):
        baseline.Baseline.load(p)
    assert baseline.Baseline.load(p, migrate=True).deviations["U-ACT-1"][1] == entry  # to be rewritten


def test_load_refuses_a_race_without_a_workaround(tmp_path):
    race = {k: v for k, v in RACE.items() if k != "workaround"}
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"schema": 3, "mhd_version": "9.9", "races": {"stall": race}}))
    with pytest.raises(baseline.BaselineError, match=r"race stall has no 'workaround'"):
        baseline.Baseline.load(p)
    # A rewrite gives it the field to write, after 'observed'.
    new = baseline.updated(baseline.Baseline.load(p, migrate=True), [])
    assert list(new["races"]["stall"])[:2] == ["observed", "workaround"]
    assert baseline.to_write(new) == ["race stall"]


def test_a_rewrite_keeps_every_shipped_workaround():
    for path in SHIPPED:
        b = baseline.Baseline.load(path)
        new = baseline.updated(b, [])  # no case ran: every entry kept as it is
        assert new["deviations"] == b.deviations and new["races"] == b.races, path.name


def test_writing_a_new_entry_names_the_workaround_to_write(tmp_path):
    b = baseline.Baseline.empty("9.9", tmp_path / "9.9.json")
    said = []
    baseline.write_updated(b, [case("test_q[a]", ["U-QUEUE-1"], "deviates", "failed")], out=said.append)
    assert said[-1].startswith("1 entries have no workaround yet (U-QUEUE-1): write each one's 'workaround'")
    with pytest.raises(baseline.BaselineError, match="U-QUEUE-1 has no 'workaround'"):
        baseline.Baseline.load(b.path)
    baseline.Baseline.load(b.path, migrate=True)  # a later rewrite still reads it


def test_the_workaround_reaches_the_gate_s_expectation_and_race():
    b = make({"U-HDR-1": {"observed": "o", "workaround": "add the header", "signatures": SIG, "cases": ["t[*]"]}},
             races={"stall": RACE})
    assert b.expectation("t[epoll-plain]", ["U-HDR-1"]).workaround == "add the header"
    assert b.race(["U-ACT-1"], "epoll-https").workaround == "w"


def test_a_baseline_is_written_with_its_pairs_one_to_a_line():
    data = {"races": {"stall": {"runs": [[1, 2], [0, 3]], "rates": {"low": 0.0, "high": 0.9}}}}
    text = baseline.dumps(data)
    assert json.loads(text) == data
    assert [line.strip() for line in text.splitlines()[4:6]] == ["[1, 2],", "[0, 3]"] and text.endswith("\n")
