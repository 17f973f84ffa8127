"""A case that can meet a known race runs again, whole (fresh fixtures, a
fresh server where the last run failed), while every run so far failed as
that race and the judgement (outcome.judge_race) says 'continue': one
failure is not yet the race or a failure that happens every time. Only the
last run's reports are logged; the runs before it are counted in its
verdict (outcome.Attempts), with the first failure's text."""

import time

import pytest
from _pytest.runner import runtestprotocol

from ..deadlines import scaled
from .state import ATTEMPTS, ATTEMPTS_AFTER, PER_RUN, RACE, RACE_STARTED

# Scaled: a race case's runs stop after this long in all; if the judgement
# is still undecided then, the case says so (an error of the harness).
BUDGET_SECONDS = 600


def budget_left(item):
    """Whether another run of a race case may start (never outside the
    protocol below: nothing would run it)."""
    started = item.stash.get(RACE_STARTED, None)
    return started is not None and time.monotonic() - started < scaled(BUDGET_SECONDS)


def _decision(reports):
    info = getattr(reports[-1], "conformance", None) or {}
    return (info.get("race") or {}).get("decision")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    if RACE not in item.stash:
        return None  # pytest's own protocol
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    item.stash[RACE_STARTED] = time.monotonic()
    earlier = 0.0  # the runs before the last one: their time is the case's too
    while True:
        for key in PER_RUN:
            if key in item.stash:
                del item.stash[key]
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if _decision(reports) != "continue" or ATTEMPTS_AFTER not in item.stash:
            break
        item.stash[ATTEMPTS] = item.stash[ATTEMPTS_AFTER]
        earlier += sum(r.duration for r in reports)
    reports[-1].duration += earlier
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
