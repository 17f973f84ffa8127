"""What the plugin's hooks and fixtures share: the session's State, the
keys of what a case stashes on its item, and the reference server's
environment."""

import json
import os
import pathlib
import time

import pytest

from .. import catalog
from ..tools import build

CONNS = pytest.StashKey()
OBSERVED = pytest.StashKey()
EXPECTED = pytest.StashKey()  # outcome.Expectation: the baseline lists the case as a deviation
RACE = pytest.StashKey()  # outcome.Race: the case can meet a race the baseline knows
ATTEMPTS = pytest.StashKey()  # outcome.Attempts: a race case's runs before this one
ATTEMPTS_AFTER = pytest.StashKey()  # outcome.Attempts: ... including this one (set at its last phase)
RACE_STARTED = pytest.StashKey()  # time.monotonic() of a race case's first run (its time budget)
PHASES = pytest.StashKey()  # outcome.Phase of each phase run so far
SERVER_ERROR_SHOWN = pytest.StashKey()  # the case itself already failed on the server's crash
WS_SESSIONS = pytest.StashKey()  # the case's WebSocket client sessions, for its report
CALL_PASSED = pytest.StashKey()  # the case's own checks passed (then its leaks are checked)
FAILURE_SHOWN = pytest.StashKey()  # a report of an earlier phase already failed the case
current = None  # the session's State, for hooks that get no config (set by pytest_configure)


class State:
    """What the whole session shares; built in pytest_sessionstart."""

    def __init__(self, config):
        self.config = config
        self.prefix = config.getoption("mhd")
        self.sanitize = config.getoption("sanitize")
        self.mutant = config.getoption("mutant")
        self.report_dir = pathlib.Path(config.getoption("report"))
        self.catalog = catalog.load()
        self.binary = None
        self.mhd = None
        self.baseline = None
        self.cases = {}
        self.started = time.monotonic()
        self.load_at_start = os.getloadavg()  # provenance: how busy the machine was when the run began
        self.alpha = None  # a race case's false-alarm probability (outcome.alpha_for), set at collection
        self.race_cases = None  # cases of the whole selection (all shards) that may meet a known race
        self.shard_plan = None  # --shard: the whole selection's size and how it was cut (harness/shards.py)
        self.uncollected = []  # case files that could not be collected: the run is incomplete
        self.warnings = []  # said in the header and kept in results.json (e.g. a baseline of another version)
        self.client_behaviours = {}  # known behaviours of the real clients (harness/interop/known.py)

    def build_value(self, name):
        """A value from the CMake cache of the server build this run uses
        (per prefix, and its own folder with --sanitize)."""
        return build.cached_value(self.prefix, name, self.sanitize)


def item_rules(item):
    return [r for mark in item.iter_markers("rule") for r in mark.args]


# The stash entries that belong to one run of a case (a case that meets a
# known race runs again with them cleared).
PER_RUN = (CONNS, OBSERVED, PHASES, SERVER_ERROR_SHOWN, WS_SESSIONS, CALL_PASSED, FAILURE_SHOWN, ATTEMPTS_AFTER)


STOP_FAILURES = "stop-failures.jsonl"  # in the report folder, shared by xdist workers


def record_stop_failure(state, srv, failure):
    """A shared server whose stop went wrong (it did not stop, or crashed
    on the way out), when the pool stopped it after a case failed or at the
    end of the run: the pool owned it, so the controller makes it a case of
    its own (U-STOP-1)."""
    state.report_dir.mkdir(parents=True, exist_ok=True)
    options = "".join(f"-{k}={v}" for k, v in sorted(srv.options.items()) if v not in (None, False, "upgrade"))
    kind = "no-stop" if srv.killed else "server-death"
    with open(state.report_dir / STOP_FAILURES, "a") as f:
        f.write(json.dumps({"name": f"shared_server_stops[{srv.mode.name}-{srv.transport}{options}]",
                            "mode": srv.mode.id, "transport": srv.transport, "kind": kind,
                            "message": f"{type(failure).__name__}: {failure}"}) + "\n")


def server_env(config, state, detect_leaks=False, faults=None):
    """The reference server's extra environment: the mutant MHD chosen, the
    faults the system injects (`faults`: CONFORMANCE_FAULTS, harness/faults.py),
    and the sanitizers' settings (with `detect_leaks`, LeakSanitizer reports
    at exit: for a server that a case stops, U-STOP-1)."""
    env = {}
    preload = []
    if faults:
        # Ahead of the mutant: the faults see MHD's own calls (not the
        # mutant's wrappers, which every caller's calls pass through), and
        # the mutant sees what the system gave, as MHD does.
        preload.append(str(build.faults_library(state.binary)))
        env.update(CONFORMANCE_FAULTS=faults)
    mutant = config.getoption("mutant")
    if mutant:
        preload.append(str(build.mutants_library(state.binary)))
        env.update(CONFORMANCE_MUTANT=mutant)
    if preload:
        env.update(LD_PRELOAD=" ".join(preload))
    if config.getoption("sanitize"):
        # A report ends the server (abort): the case that was running sees
        # the crash with the report in the server's stderr lines. The mutant
        # library is preloaded ahead of ASan's runtime on purpose.
        env.update(ASAN_OPTIONS=f"abort_on_error=1:detect_leaks={int(detect_leaks)}:verify_asan_link_order=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return env or None

