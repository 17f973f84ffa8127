"""--shard K/N and ./conformance merge: the parts of one run, and the run
they make again."""

import json

import pytest

from harness import catalog, durations, shards
from harness.reports import results
from harness.tools import merge

IDS = [f"cases/test_x.py::t{i}[epoll-plain]" for i in range(23)]


def test_shard_spec():
    assert shards.parse("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "4", "a/b", "", "1/0"):
        with pytest.raises(shards.ShardError, match="give K/N with 1 <= K <= N"):
            shards.parse(bad)


def test_every_case_in_one_shard_the_same_way_every_time():
    durations = {i: float(n % 7) for n, i in enumerate(IDS)}
    part = shards.assign(IDS, 4, durations)
    assert set(part) == set(IDS) and set(part.values()) == {1, 2, 3, 4}
    assert part == shards.assign(list(reversed(IDS)), 4, durations)  # the order given does not matter
    loads = [sum(durations[i] for i in IDS if part[i] == k) for k in (1, 2, 3, 4)]
    assert max(loads) - min(loads) <= max(durations.values())  # longest first, to the least loaded


def test_without_durations_the_shards_differ_by_one_case_at_most():
    counts = [list(shards.assign(IDS, 4, {}).values()).count(k) for k in (1, 2, 3, 4)]
    assert sorted(counts) == [5, 6, 6, 6]


def test_durations_kept_per_version(tmp_path, monkeypatch):
    monkeypatch.setattr(durations, "DURATIONS", tmp_path)
    durations.record("1.0.10", [{"id": "a", "outcome": "passed", "duration_s": 2.5},
                                {"id": "b", "outcome": "skipped", "duration_s": 0.0}])
    durations.record("1.0.10", [{"id": "c", "outcome": "failed", "duration_s": 1}])
    assert durations.load("1.0.10") == {"a": 2.5, "c": 1.0}
    assert durations.load("0.9.75") == {}


def test_longest_first_dealt_to_the_workers_first_batches():
    ids = [f"t{i:02}" for i in range(32)]
    took = {i: float(n) for n, i in enumerate(ids)}  # t31 the longest
    order = durations.longest_first(ids, 2, took)
    batch = 32 // 2 // 4  # what xdist sends each of 2 workers first
    first, second = order[:batch], order[batch:2 * batch]
    assert first == ["t31", "t29", "t27", "t25"] and second == ["t30", "t28", "t26", "t24"]
    assert sorted(order) == sorted(ids)
    assert durations.longest_first(ids, 1, took) == list(reversed(ids))
    assert durations.longest_first(ids, 2, {"t00": 1.0}) is None  # too few known: the order stays


def test_a_mutant_run_goes_shortest_first():
    took = {"a": 10.0, "b": 0.1, "c": 2.0}
    assert durations.shortest_first(["a", "b", "c", "d"], took) == ["b", "c", "a", "d"]
    assert durations.shortest_first(["a", "x", "y", "z"], took) is None  # too few known: the order stays


def _case(i, verdict="conforms", outcome="passed"):
    return {"id": f"cases/test_half.py::t{i}[epoll-plain]", "rules": ["U-HALF-3"], "transport": "plain",
            "mode": "M-EPOLL", "verdict": verdict, "outcome": outcome, "duration_s": 1.0}


def _write_shards(tmp_path, parts, over=None):
    """Shard report folders of one run whose cases are `parts` (a list of
    case lists, shard 1 first)."""
    cat = catalog.load()
    n = len(parts)
    plan = {"cases": sum(len(p) for p in parts), "digest": "d"}
    folders = []
    for k, cases in enumerate(parts, 1):
        data = results.build(cases, cat, {"version": "1.0.10", "prefix": "/p"}, 10.0 * k, ["plain"],
                             "/x/baselines/1.0.10.json", shard=f"{k}/{n}", shard_plan=plan)
        data.update((over or {}).get(k, {}))
        folder = tmp_path / f"s{k}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(data))
        folders.append(folder)
    return folders


def test_merged_shards_judge_as_the_run_unsharded(tmp_path):
    cases = [_case(i) for i in range(5)] + [_case(9, "deviates", "failed")]
    folders = _write_shards(tmp_path, [cases[:2], cases[2:4], cases[4:]])
    whole = results.build([dict(c) for c in cases], catalog.load(), {"version": "1.0.10", "prefix": "/p"}, 30.0,
                          ["plain"], "/x/baselines/1.0.10.json")
    assert merge.main([str(f) for f in folders] + ["--report", str(tmp_path / "m")]) == 1
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    assert merged["gate"] == whole["gate"] and merged["totals"] == whole["totals"]
    assert merged["rules"]["U-HALF-3"]["state"] == whole["rules"]["U-HALF-3"]["state"]
    assert merged["duration_s"] == 30.0 and [s["shard"] for s in merged["shards"]] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize("problem, parts, over, words", [
    ("missing", [[0], [1]], {}, None),
    ("twice", [[0], [0]], {}, "ran in two shards"),
    ("other-version", [[0], [1]], {2: {"mhd": {"version": "1.0.1", "prefix": "/q"}}}, "MHD version"),
    ("other-cut", [[0], [1]], {2: {"shard_plan": {"cases": 2, "digest": "e"}}}, "cut differently"),
    ("cases-lost", [[0], [1]], {1: {"shard_plan": {"cases": 3, "digest": "d"}},
                                2: {"shard_plan": {"cases": 3, "digest": "d"}}}, "2 cases of a selection of 3"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")
def test_shards_that_do_not_make_one_run_are_refused(tmp_path, capsys, problem, parts, over, words):
    folders = _write_shards(tmp_path, [[_case(i) for i in p] for p in parts], over)
    given = folders[:1] if problem == "missing" else folders
    assert merge.main([str(f) for f in given] + ["--report", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert (words or "shard 2/2 missing") in err
    assert not (tmp_path / "m").exists()


def test_a_run_that_is_not_a_shard_is_refused(tmp_path, capsys):
    data = results.build([_case(0)], catalog.load(), {"version": "1.0.10"}, 1.0, ["plain"], None)
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert merge.main([str(tmp_path)]) == 2
    assert "not a shard" in capsys.readouterr().err
    assert merge.main([str(tmp_path / "nope")]) == 3
