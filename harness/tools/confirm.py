"""--confirm-failures N: after a red run, the cases that did not behave
run N times again, each rerun a run of its own (REPORT/confirm/K/), so
that a packager can tell a failure that comes back every time from one
that came once. The reruns change no verdict: the gate is the run's;
they are recorded beside it (results.json "confirmation") and shown in
the reports and on the console."""

import argparse
import shutil

from ..reports import results
from . import selection
from .runner import pytest_command, run_pytest


def failed_ids(data):
    """The pytest ids of the run's cases that did not behave (not the
    pool's stop of a shared server, which is no case to rerun)."""
    return [c["id"] for c in data.get("cases", []) if results.problem(c) and c["id"].startswith("cases/")]


def rerun(args, prefix, report, against, ids, times):
    """{"reruns": times, "cases": {id: {"failed": k, "reruns": n}}}: how
    often each case did not behave again. `against`: the pytest options
    that say what the run was against (--mutant, --fault-seed)."""
    tally = {i: {"failed": 0, "reruns": 0} for i in ids}
    sized = argparse.Namespace(**{**vars(args), "jobs": selection.workers(len(ids), args.jobs),
                                  "update_baseline": False, "shard": None})  # the ids are the selection
    folder = report / "confirm"
    shutil.rmtree(folder, ignore_errors=True)
    for k in range(1, times + 1):
        out = folder / str(k)
        out.mkdir(parents=True)
        with open(out / "pytest.log", "w") as log:
            run_pytest(pytest_command(sized, prefix, out, [*against, *ids]), log=log)
        try:
            _, again = results.read(out)
        except results.Unreadable:
            continue  # a rerun that wrote nothing counts for no case
        for case in again.get("cases", []):
            if case["id"] in tally:
                tally[case["id"]]["reruns"] += 1
                tally[case["id"]]["failed"] += bool(results.problem(case))
    return {"reruns": times, "cases": tally}
