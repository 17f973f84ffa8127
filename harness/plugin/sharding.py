"""--shard K/N: the K-th of N parts of the final selection (harness/shards.py
decides the parts). A plugin of its own, so that its collection hook runs
last, after -k and -m and the suite's own selection."""

import hashlib
import json

import pytest

from .. import shards
from .state import RACE


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    state = config.conformance
    # A race case's false-alarm share is the whole selection's, in every
    # shard of it: the shards merged judge as the run unsharded would.
    state.race_cases = sum(RACE in item.stash for item in items)
    if not config.conformance_shard or not state.mhd:
        return
    k, n = config.conformance_shard
    part = shards.assign([item.nodeid for item in items], n, shards.load_durations(state.mhd["version"]))
    # What merge checks: every shard cut from the same selection the same way.
    state.shard_plan = {"cases": len(items), "digest": hashlib.sha256(
        json.dumps(sorted(part.items())).encode()).hexdigest()[:16]}
    drop = [item for item in items if part[item.nodeid] != k]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = [item for item in items if part[item.nodeid] == k]
