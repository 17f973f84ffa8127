"""Which cases run here, and in what order: the last step of collection,
after -k and -m and the suite's own selection (a plugin of its own, so
that its hook runs last). --shard K/N keeps the K-th of N parts of the
selection (harness/shards.py); then the cases go the longest first, by the
durations recorded for this MHD version (harness/durations.py), or against
a mutant the shortest first."""

import hashlib
import json

import pytest

from .. import durations, shards
from .state import RACE


def _workers(config):
    """pytest-xdist workers of this run (1 without xdist); every worker and
    the controller agree."""
    if hasattr(config, "workerinput"):
        return int(config.workerinput.get("workercount", 1))
    return int(getattr(config.option, "numprocesses", None) or 1)


RECORDED = "conformance_durations"  # workerinput key: the controller's copy
_recorded_key = pytest.StashKey[dict]()


def _recorded(config):
    """The recorded durations this run shards and orders by, read once by
    the controller: xdist workers get its copy, so that another run that
    rewrites the file meanwhile cannot give two workers two orders (xdist
    stops a run whose workers collected differently)."""
    if hasattr(config, "workerinput") and RECORDED in config.workerinput:
        return config.workerinput[RECORDED]
    if _recorded_key not in config.stash:
        state = config.conformance
        config.stash[_recorded_key] = durations.load(state.mhd["version"]) if state.mhd else {}
    return config.stash[_recorded_key]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput[RECORDED] = _recorded(node.config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    state = config.conformance
    # A race case's false-alarm share is the whole selection's, in every
    # shard of it: the shards merged judge as the run unsharded would.
    state.race_cases = sum(RACE in item.stash for item in items)
    if not state.mhd:
        return
    recorded = _recorded(config)
    if config.conformance_shard:
        k, n = config.conformance_shard
        part = shards.assign([item.nodeid for item in items], n, recorded)
        # What merge checks: every shard cut from the same selection the same way.
        state.shard_plan = {"cases": len(items), "digest": hashlib.sha256(
            json.dumps(sorted(part.items())).encode()).hexdigest()[:16]}
        drop = [item for item in items if part[item.nodeid] != k]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if part[item.nodeid] == k]
    ids = [item.nodeid for item in items]
    order = (durations.shortest_first(ids, recorded) if state.mutant
             else durations.longest_first(ids, _workers(config), recorded))
    if order is not None:
        by_id = {item.nodeid: item for item in items}
        items[:] = [by_id[i] for i in order]
