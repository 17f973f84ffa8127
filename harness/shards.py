"""Shards: one run's selection split into N parts that run apart (the jobs
of a CI matrix) and are merged back into one run (./conformance merge).

Which case goes to which shard is decided by the case ids and by how long
each case took in the last run against the same MHD version
(build/durations/VERSION.json, written after every run): the longest first,
each to the shard with the least time so far. Every shard, and every
pytest-xdist worker of a shard, makes the same decision from the same file;
without the file (a fresh CI machine) every case weighs the same and the
shards differ by at most one case. Standard library only."""

import json
import re

from . import ROOT

DURATIONS = ROOT / "build" / "durations"
SPEC = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


class ShardError(ValueError):
    pass


def parse(text):
    """'K/N' -> (K, N), 1 <= K <= N; ShardError naming the fix otherwise."""
    m = SPEC.match(text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ShardError(f"--shard {text}: give K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def durations_path(version):
    return DURATIONS / f"{version}.json"


def load_durations(version):
    """{case id: seconds} of the last runs against `version` ({} if none)."""
    try:
        data = json.loads(durations_path(version).read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def record_durations(version, cases):
    """Keeps each case's duration from a run (cases that did not run keep
    their last one). A failure to write only costs the balance."""
    known = load_durations(version)
    for case in cases:
        if case.get("outcome") != "skipped" and isinstance(case.get("duration_s"), (int, float)):
            known[case["id"]] = round(case["duration_s"], 3)
    path = durations_path(version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError:
        pass


def assign(ids, n, durations):
    """{case id: shard 1..n}: longest first, each to the least loaded shard
    (the lowest number on a tie). A case without a recorded duration weighs
    the median of those with one (1 s when none has one)."""
    known = sorted(durations[i] for i in ids if i in durations)
    default = known[len(known) // 2] if known else 1.0
    load = [0.0] * n
    out = {}
    for case in sorted(ids, key=lambda i: (-durations.get(i, default), i)):
        k = min(range(n), key=lambda s: (load[s], s))
        load[k] += durations.get(case, default)
        out[case] = k + 1
    return out
