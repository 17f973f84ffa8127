"""The session's hooks: options, the mode x transport parametrization,
selection by rule, the baseline and the server build at the start, the
summary at the end."""

import fnmatch
import itertools
import os
import pathlib
import re

import pytest
from _pytest import junitxml  # its stash key: the mutant as a testsuite property

from .. import ROOT, catalog, modes, options, outcome, shards, transfer
from .. import baseline as baselines
from ..interop import clients
from ..interop import known as known_clients
from ..deadlines import scaled
from ..reports import results
from ..tools import build
from . import progress, schedule
from . import state as shared
from .state import EXPECTED, RACE, STOP_FAILURES, State, item_rules, server_env

BACKSTOP_SECONDS = 300  # scaled, per call of a case
# A -m/-k that asks for the real-client cases (not one that leaves them out).
INTEROP_ASKED = r"(?<!not )\b(?:" + "|".join(["interop", *(re.escape(n) for n in clients.NAMES)]) + r")\b"


def pytest_addoption(parser):
    g = parser.getgroup("conformance", "MHD upgrade conformance")
    options.add_mhd(g.addoption, default=os.environ.get("CONFORMANCE_MHD") or None)
    g.addoption("--report", metavar="DIR", default=str(ROOT / "reports" / "latest"),
                help="folder for results.json, summary.md and junit.xml (default: reports/latest)")
    options.add_selection(g.addoption)
    options.add_run(g.addoption, volume_help="; CONFORMANCE_VOLUME sets another default",
                    interop_help="; '-m interop' then selects only them")
    g.addoption("--mutant", metavar="NAME",
                help="run every reference server with this mutant MHD (servers/mutants.c): the suite's self-test")
    g.addoption("--fault-seed", metavar="N", type=int,
                help="the seed of every injected fault schedule (U-FAULT-*; default: one fixed per case)")


def pytest_configure(config):
    config.addinivalue_line("markers", "rule(*ids): the catalogue rule IDs a case checks")
    config.addinivalue_line("markers", "modes(*ids): the only modes a case applies to (e.g. M-TPC)")
    config.addinivalue_line("markers", "plain_only: the rule is checked over plain HTTP only")
    config.addinivalue_line("markers", "tls_only: a case about TLS itself, run over HTTPS only")
    config.addinivalue_line("markers", "interop: a real WebSocket client's case (U-WS-6), run with --interop")
    if config.getoption("mode"):
        try:
            config.conformance_modes = [modes.lookup(m) for m in config.getoption("mode")]
        except ValueError as e:
            raise pytest.UsageError(str(e))
    else:
        config.conformance_modes = list(modes.MODES)
    if (getattr(config.option, "xmlpath", None) is None and not hasattr(config, "workerinput")
            and collects_cases(getattr(config, "args", ()), config.invocation_params.dir)):  # not tests/ (nor --help)
        config.option.xmlpath = str(pathlib.Path(config.getoption("report")) / "junit.xml")
    config.conformance_transports = tuple(config.getoption("transport")) or modes.TRANSPORTS
    asked = f"{config.getoption('markexpr', '') or ''} {config.getoption('keyword', '') or ''}"
    if not config.getoption("interop") and re.search(INTEROP_ASKED, asked):
        raise pytest.UsageError(f"-m/-k {asked.strip()!r} asks for the real-client cases (U-WS-6): add --interop "
                                "(./conformance --interop ... -- -m interop)")
    if config.getoption("shard"):
        try:
            config.conformance_shard = shards.parse(config.getoption("shard"))
        except shards.ShardError as e:
            raise pytest.UsageError(str(e))
    else:
        config.conformance_shard = None
    if config.getoption("volume") is not None:
        os.environ[transfer.VOLUME_ENV] = str(config.getoption("volume"))  # xdist workers inherit it
    config.conformance = State(config)
    shared.current = config.conformance
    config.pluginmanager.register(schedule, "conformance-schedule")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    state = session.config.conformance
    if not hasattr(session.config, "workerinput") and not session.config.option.collectonly:
        # (not a --collect-only, e.g. ./conformance sizing its workers: it is no run of that folder)
        (state.report_dir / STOP_FAILURES).unlink(missing_ok=True)
    if not collects_cases(session.config.args, session.config.invocation_params.dir):
        return  # the harness's own tests (tests/): no case, so no server, MHD or baseline to set up
    try:
        state.binary = build.ensure_server(state.prefix, state.sanitize)
        info = build.server_version(state.binary, server_env(session.config, state))
    except build.BuildError as e:
        pytest.exit(f"cannot build the reference server: {e}", returncode=3)
    except OSError as e:
        pytest.exit(f"cannot build the reference server: {e} (is {build.BUILD_ROOT} writable?)", returncode=3)
    choice = session.config.getoption("baseline")
    update = session.config.getoption("update_baseline")
    try:
        if choice == "none":
            state.baseline = baselines.Baseline.empty(info["mhd_version"])
        elif choice:
            state.baseline = baselines.Baseline.load(choice, migrate=update)
        else:
            path = baselines.BASELINES / f"{info['mhd_version']}.json"
            state.baseline = (baselines.Baseline.load(path, migrate=update) if path.exists()
                              else baselines.Baseline.empty(info["mhd_version"], path))
        state.client_behaviours = {} if choice == "none" else known_clients.load()
    except baselines.BaselineError as e:
        pytest.exit(str(e), returncode=3)
    if state.baseline.version and state.baseline.version != info["mhd_version"]:
        other = (f"the baseline {state.baseline.path} is MHD {state.baseline.version}'s, and this run tests MHD "
                 f"{info['mhd_version']}")
        if update:
            pytest.exit(f"--update-baseline refuses to run: {other}, and writing it would record one version's "
                        f"behaviour as another's; leave out --baseline to update this version's own "
                        f"(baselines/{info['mhd_version']}.json)", returncode=4)
        state.warnings.append(f"{other}: known deviations of one version are judged against another's")
    if update and state.baseline.path is None:
        pytest.exit("--update-baseline needs a baseline file to write; --baseline none has none", returncode=4)
    if update and state.mutant:
        pytest.exit(f"--update-baseline refuses a run against the mutant {state.mutant!r}: its failures are the "
                    "mutant's, not MHD's", returncode=4)
    xml = session.config.stash.get(junitxml.xml_key, None)
    if xml is not None:
        # A CI dashboard's name for the run: the MHD under test, not "pytest".
        xml.suite_name = f"upgrade-conformance MHD {info['mhd_version']}" + (f" mutant {state.mutant}"
                                                                             if state.mutant else "")
    if xml is not None and state.mutant:
        xml.add_global_property("mutant", state.mutant)
    progress.start(session.config)
    session.config.conformance_transports, no_tls = modes.servable(session.config.conformance_transports,
                                                                   info["feature_tls"])
    state.warnings += [no_tls] if no_tls else []
    state.mhd = {
        "version": info["mhd_version"],
        "prefix": state.build_value("MHD_PREFIX") or state.prefix,
        "feature_upgrade": info["feature_upgrade"],
        "feature_tls": info["feature_tls"],
    }


def collects_cases(args, invocation_dir):
    """True if pytest's paths `args` (relative to `invocation_dir`; with
    none given, pytest.ini's testpaths) reach cases/, whose cases run the
    reference server. A name that is no path (--pyargs) counts as a case."""
    cases = ROOT / "cases"
    for arg in args:
        path = (pathlib.Path(invocation_dir) / str(arg).split("::")[0]).resolve()
        if not path.exists() or path == cases or cases in path.parents or path in cases.parents:
            return True
    return False


def pytest_report_header(config):
    state = config.conformance
    if state.mhd is None:
        return None
    base = state.baseline.path if state.baseline and state.baseline.path and state.baseline.path.exists() else "none"
    return [f"MHD {state.mhd['version']} from {state.mhd['prefix']}; server {state.binary}",
            f"baseline: {base}"] + [f"WARNING: {w}" for w in state.warnings] + ([f"MUTANT: {state.mutant} (a self-test: failures are the mutant's, not MHD's)"]
                                    if state.mutant else [])


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    if "mode" in metafunc.fixturenames:
        only = [m for mark in metafunc.definition.iter_markers("modes") for m in mark.args]
        transports = metafunc.config.conformance_transports
        if metafunc.definition.get_closest_marker("plain_only"):
            transports = tuple(t for t in transports if t == "plain")
        if metafunc.definition.get_closest_marker("tls_only"):
            transports = tuple(t for t in transports if t != "plain")
        pairs = [(m, t) for m in metafunc.config.conformance_modes for t in transports
                 if not only or m.id in only]
        metafunc.parametrize(("mode", "transport"), pairs, ids=[f"{m.name}-{t}" for m, t in pairs])


def pytest_collection_modifyitems(session, config, items):
    state = config.conformance
    patterns, _ = catalog.rule_patterns(config.getoption("rule"), state.catalog)
    keep, drop = [], []
    for item in items:
        rules = item_rules(item)
        unknown = [r for r in rules if r not in state.catalog]
        if unknown:
            raise pytest.UsageError(f"{item.nodeid} names rules not in the catalogue: {unknown}")
        if patterns and not any(fnmatch.fnmatchcase(r, p) for r in rules for p in patterns):
            drop.append(item)
            continue
        if item.get_closest_marker("interop") and not config.getoption("interop"):
            drop.append(item)  # real clients only when asked for: they add minutes (README, "Real clients")
            continue
        callspec = getattr(item, "callspec", None)
        if callspec and "mode" in callspec.params and not isinstance(callspec.params["mode"], modes.Mode):
            drop.append(item)  # no mode/transport left for it (e.g. plain-only in an HTTPS-only run)
            continue
        keep.append(item)
        # `-k U-EXTRA-1` (or `-k U-EXTRA`, a family) selects by rule too.
        item.extra_keyword_matches.update(rules)
        # The backstop (pytest-timeout, per call): every wait has its own
        # deadline; this one only ends a harness that hangs.
        item.add_marker(pytest.mark.timeout(scaled(BACKSTOP_SECONDS)))
        expected = state.baseline.expectation(item.name, rules) if state.baseline else None
        client = getattr(item, "callspec", None) and item.callspec.params.get("client")
        if not expected and client:
            expected = known_clients.expectation(state.client_behaviours, item.name, client)
        if expected:
            item.stash[EXPECTED] = expected
            continue
        race = state.baseline.race(rules, _cell(item)) if state.baseline else None
        if race:
            item.stash[RACE] = race
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = interleaved(keep)


def _cell(item):
    """'MODE-TRANSPORT' of a case ('epoll-https'), None for a case about the
    API or the daemon alone."""
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    mode, transport = params.get("mode"), params.get("transport")
    if not (isinstance(mode, modes.Mode) and isinstance(transport, str)):
        return None
    return outcome.cell_of({"mode": mode.id, "transport": transport})


def pytest_collection_finish(session):
    """Once the selection is final (-k included): the false-alarm
    probability each race case may have, so that the run's is at most
    outcome.RUN_FALSE_ALARM. Every xdist worker collects the same."""
    state = session.config.conformance
    state.alpha = outcome.alpha_for(state.race_cases if state.race_cases is not None
                                    else sum(RACE in item.stash for item in session.items))


def interleaved(items):
    """The cases in rounds: the first instance (mode, transport, ...) of
    every case function, then the second of each, and so on. pytest-xdist
    hands out consecutive cases in batches, so a case whose instances all
    wait on a deadline would otherwise keep one worker busy while the
    others have finished. Deterministic: every worker collects the same order."""
    groups = {}
    for item in items:
        groups.setdefault((item.path, item.originalname), []).append(item)
    rounds = itertools.zip_longest(*groups.values())
    return [item for batch in rounds for item in batch if item is not None]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.conformance
    data = getattr(state, "results", None)
    if not data or hasattr(config, "workerinput") or os.environ.get("CONFORMANCE_CLI"):
        return  # ./conformance prints its own summary
    terminalreporter.section("upgrade conformance")
    passed = data["gate"]["passed"]
    for line, what in results.summary_lines(data, state.report_dir):
        terminalreporter.write_line(line, yellow=what == "warning", bold=what == "verdict",
                                    red=what == "verdict" and not passed, green=what == "verdict" and passed)

