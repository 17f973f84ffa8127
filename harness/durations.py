"""How long each case took in the last runs against an MHD version
(build/durations/VERSION.json, beside the builds, written after every
unsharded run that is not a mutant's): what --shard balances its parts by,
and what orders a run's cases, the longest first. Standard library only."""

import json

from . import ROOT

DURATIONS = ROOT / "build" / "durations"


def path_of(version):
    return DURATIONS / f"{version}.json"


def load(version):
    """{case id: seconds} of the last runs against `version` ({} if none)."""
    try:
        data = json.loads(path_of(version).read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def record(version, cases):
    """Keeps each case's duration from a run (cases that did not run keep
    their last one). A failure to write only costs the balance."""
    known = load(version)
    for case in cases:
        if case.get("outcome") != "skipped" and isinstance(case.get("duration_s"), (int, float)):
            known[case["id"]] = round(case["duration_s"], 3)
    path = path_of(version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError:
        pass


def longest_first(ids, workers, durations):
    """`ids` in the order to run them with `workers` pytest-xdist workers:
    the longest first, so that none of them starts last. xdist hands each
    worker its first cases as one batch of consecutive ids (a quarter of
    its share), then more batches as it runs low; so the longest are dealt
    out: in each stretch of `workers` batches, worker j's batch holds the
    j-th, (j + workers)-th, ... longest of that stretch. Cases without a
    recorded duration keep their place after the others. None when fewer
    than half of the cases have one (a fresh clone): keep the order given."""
    known = [i for i in ids if i in durations]
    if not ids or 2 * len(known) < len(ids):
        return None
    rank = {i: n for n, i in enumerate(ids)}
    ordered = sorted(known, key=lambda i: (-durations[i], rank[i])) + [i for i in ids if i not in durations]
    if workers <= 1:
        return ordered
    batch = max(len(ordered) // workers // 4, 2)  # xdist's first batch (scheduler/load.py)
    out = []
    for start in range(0, len(ordered), batch * workers):
        stretch = ordered[start:start + batch * workers]
        out += [stretch[i] for j in range(workers) for i in range(j, len(stretch), workers)]
    return out


def shortest_first(ids, durations):
    """`ids` the shortest first (a mutant's run: its first kill may end
    it, and the longest cases against a good MHD are mostly known
    deviations waiting out their deadlines, which no mutant makes fail).
    Cases without a recorded duration keep their place after the others;
    None when fewer than half of the cases have one."""
    known = [i for i in ids if i in durations]
    if not ids or 2 * len(known) < len(ids):
        return None
    rank = {i: n for n, i in enumerate(ids)}
    return sorted(known, key=lambda i: (durations[i], rank[i])) + [i for i in ids if i not in durations]
