"""Shards: one run's selection split into N parts that run apart (the jobs
of a CI matrix) and are merged back into one run (./conformance merge).

Which case goes to which shard is decided by the case ids and by how long
each case took in the last run against the same MHD version
(harness/durations.py): the longest first, each to the shard with the
least time so far. Every shard, and every
pytest-xdist worker of a shard, makes the same decision from the same file;
without the file (a fresh CI machine) every case weighs the same and the
shards differ by at most one case. Standard library only."""

import re

SPEC = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


class ShardError(ValueError):
    pass


def parse(text):
    """'K/N' -> (K, N), 1 <= K <= N; ShardError naming the fix otherwise."""
    m = SPEC.match(text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ShardError(f"--shard {text}: give K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


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
