"""The gate's plumbing in pytest: each phase of a case becomes an
outcome.Phase, outcome.classify decides (with the baseline's expectation,
or the known race the case can meet and its attempts so far), pytest's own
report is made to say the same (terminal, junit.xml, exit status), and at
the end of the session the reports are written from the decisions."""

import json
import os
import ssl
import subprocess
import time

import pytest
from _pytest import junitxml  # its stash key: the verdict as a testsuite property

from .. import baseline as baselines
from .. import ROOT, deadlines, durations, leaks, outcome, streams, transfer
from ..client import WireError
from ..reports import junit, results
from ..server import EventTimeout, ServerDied, StopFailure
from ..tracebacks import hidden as _hidden
from . import state as shared
from .fixtures import MeasureMismatch
from .races import budget_left
from .state import (ATTEMPTS, ATTEMPTS_AFTER, CALL_PASSED, CONNS, EXPECTED, FAILURE_SHOWN, OBSERVED, PHASES, RACE,
                    SERVER_ERROR_SHOWN, STOP_FAILURES, WS_SESSIONS, item_rules)

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

STOP_RULE = "U-STOP-1"  # a shared server that did not stop, after every case that used it cleaned up


def _server_events(item, about="", most=60):
    """The server's events for each connection (and WebSocket session) of
    the case, newest last: what MHD told the application. With `about` (a
    failure's text), only the connections it names, when it names any; at
    most `most` event lines in all."""
    conns = item.stash.get(CONNS, [])
    named = [c for c in conns if c.rid in about]
    parts, lines = [], 0
    for session in item.stash.get(WS_SESSIONS, []):
        events = session.events()[-25:]
        parts.append(f"WebSocket client rid={session.rid}" + ("; server events:\n    " + "\n    ".join(
            str({k: v for k, v in e.items() if k != "t"}) for e in events) if events else ""))
        lines += len(events)
    for conn in named or conns:
        events = conn.server.events(conn.rid)[-25:]
        if lines >= most:
            parts.append(f"(server events of {len(named or conns)} connections in all: see results.json)")
            break
        if events:
            parts.append(f"server events of rid={conn.rid}:\n    " + "\n    ".join(
                str({k: v for k, v in e.items() if k != "t"}) for e in events))
            lines += len(events)
    return "\n".join(parts)


def _detail(item, lead):
    """The failure's text, then each connection's bytes (once: a wire
    error already carries its own) and the server's events."""
    parts = [lead] if lead else []
    for conn in item.stash.get(CONNS, []):
        block = conn.describe()
        if block not in lead:
            parts.append(block)
    events = _server_events(item, most=400)
    if events:
        parts.append(events)
    return "\n".join(parts)[:20000]


def failure_kind(excinfo):
    """The outcome.KINDS entry of a failure, or "harness" for a fault of
    the suite itself. Resets and TLS errors that escaped the client are
    what reached the wire."""
    for cls, kind in ((leaks.LeakError, "leak"), (ServerDied, "server-death"), (StopFailure, "no-stop"),
                      (EventTimeout, "timeout"), *streams.KIND_OF, (WireError, "wire"), (MeasureMismatch, "measure"),
                      (AssertionError, "assertion"), (ConnectionError, "wire"), (ssl.SSLError, "wire")):
        if excinfo.errisinstance(cls):
            return kind
    return "harness"


def _phase(rep, call):
    if rep.skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        return outcome.Phase(call.when, "skipped", message=reason)
    if rep.failed:
        exc = call.excinfo
        if exc is None:  # pytest itself failed the phase (e.g. a strict marker)
            return outcome.Phase(call.when, "failed", "harness", rep.longreprtext)
        return outcome.Phase(call.when, "failed", failure_kind(exc), outcome.without_rewrite(exc.exconly()))
    return outcome.Phase(call.when, "passed")


def _rewrite(rep, decided, known, shown):
    """Makes pytest's view (terminal, junit, exit status) the gate's; a
    case the gate fails is failed once (`shown`: an earlier phase's report
    already failed it), not again at its teardown. `known` is the
    baseline's word for an expected deviation."""
    if decided["outcome"] == "expected-deviation":
        if rep.when == "teardown":
            rep.outcome = "passed"  # the call's report already counted the case
        else:
            rep.outcome, rep.wasxfail = "skipped", known
    elif decided["outcome"] in outcome.FAILING and not rep.failed and not shown:
        rep.outcome, rep.longrepr = "failed", decided["detail"]
    elif decided["outcome"] == "failed" and known:
        rep.sections.append(("conformance: not the known deviation", decided["detail"].split("\n", 1)[0]))


def _race_run(item, state):
    """The outcome.RaceRun of a case that can meet a known race, else None."""
    race = item.stash.get(RACE, None)
    if race is None:
        return None
    observed = item.stash.get(OBSERVED, None)
    repeated = ((observed["failures"], observed["attempts"]) if isinstance(observed, dict)
                and {"attempts", "failures"} <= observed.keys() else None)
    return outcome.RaceRun(race, state.alpha or outcome.alpha_for(1), item.stash.get(ATTEMPTS, outcome.Attempts()),
                           repeated, more=budget_left(item))


def _known(expected, race, rules):
    """What the baseline says of the case, for its record and its report."""
    if expected is not None:
        return ({"baseline": "deviation", "known": {"rule": expected.rule, "observed": expected.observed,
                                                   "evidence": expected.evidence, "whose": expected.whose,
                                                   **({"workaround": expected.workaround}
                                                      if expected.workaround else {})}},
                f"baseline {expected.version}: {expected.rule} "
                + (f"(known behaviour of the {expected.whose}) " if expected.whose != "MHD" else "")
                + expected.observed + (f" Workaround: {expected.workaround}" if expected.workaround else ""))
    if race is not None:
        return ({"baseline": "intermittent", "known": {"rule": next((r for r in rules if r in race.rules), rules[0]),
                                                      "race": race.name, "observed": race.observed,
                                                      "evidence": race.evidence, "workaround": race.workaround}},
                f"baseline {race.version}: race {race.name}: {race.observed}"
                + (f" Workaround: {race.workaround}" if race.workaround else ""))
    return {}, ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    result = yield
    rep = result.get_result()
    if not item_rules(item):
        return  # not a conformance case (e.g. the harness's own tests)
    state = item.config.conformance
    info = {"when": call.when}
    if call.when == "setup":
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        # An empty parameter set (e.g. a plain-only case in an HTTPS-only
        # run) leaves NOTSET placeholders: no mode, no transport.
        mode, transport = params.get("mode"), params.get("transport")
        info.update(rules=item_rules(item), mode=getattr(mode, "id", None),
                    transport=transport if isinstance(transport, str) else None,
                    kind=_case_kind(state, item_rules(item)))
        if isinstance(params.get("client"), str):
            info["client"] = params["client"]  # an interop case's real client (U-WS-6)
        # junitxml writes the properties of a case's teardown report, which
        # copies the item's.
        if ("rules", " ".join(item_rules(item))) not in item.user_properties:
            item.user_properties.append(("rules", " ".join(item_rules(item))))
    expected = item.stash.get(EXPECTED, None)
    run = _race_run(item, state)
    facts, known = _known(expected, run.race if run else None, item_rules(item))
    info.update(facts)
    if call.when == "call":
        item.stash[CALL_PASSED] = rep.passed
    if call.excinfo is not None and call.excinfo.errisinstance(ServerDied):
        item.stash[SERVER_ERROR_SHOWN] = True
    phases = item.stash.setdefault(PHASES, [])
    phases.append(_phase(rep, call))
    measure = None
    if _case_kind(state, item_rules(item)) == "measure" and OBSERVED in item.stash:
        measure = outcome.Measure(baseline_in_use=bool(state.baseline.path and state.baseline.path.exists()),
                                  recorded=state.baseline.measure(item.name)[0])
    decided = outcome.classify(phases, expected, measure, run)
    info.update(outcome=decided["outcome"], verdict=decided["verdict"], failure_kind=decided["kind"],
                summary=decided["summary"])
    if decided.get("findings"):
        info["findings"] = decided["findings"]
    if decided.get("race"):
        info["race"] = decided["race"]
        if call.when == "teardown":
            item.stash[ATTEMPTS_AFTER] = outcome.race_attempts(phases, run)
    if decided["outcome"] not in ("passed",) or decided["detail"]:
        lead = decided["detail"]
        info["detail"] = lead if decided["outcome"] == "skipped" else _detail(item, lead)
    if call.when == "call" and OBSERVED in item.stash:
        info["observed"] = item.stash[OBSERVED]
    _rewrite(rep, decided, known, item.stash.get(FAILURE_SHOWN, False))
    if rep.failed:
        item.stash[FAILURE_SHOWN] = True
    if rep.failed and hasattr(rep.longrepr, "addsection"):
        # The console's and junit.xml's failure text: the rule's verdict
        # and what the server saw, next to the traceback's bytes.
        events = _server_events(item, about=decided["detail"])
        rep.longrepr.addsection("conformance", f"{' '.join(info.get('rules') or item_rules(item))}: "
                                f"{decided['outcome']} ({decided['kind']}): {decided['summary']}"
                                + (f"\n{events}" if events else ""))
    rep.conformance = info


def _case_kind(state, rules):
    kinds = {state.catalog[r].kind for r in rules if r in state.catalog}
    return "measure" if kinds == {"measure"} else ("contract" if "contract" in kinds else "promise")


def pytest_runtest_logreport(report):
    info = getattr(report, "conformance", None)
    if info is None:
        return
    state = shared.current
    if state is None:
        return
    case = state.cases.setdefault(report.nodeid, {
        "id": report.nodeid, "rules": [], "mode": None, "transport": None, "kind": None,
        "verdict": "untested", "outcome": "skipped", "duration_s": 0.0})
    case["duration_s"] = round(case["duration_s"] + report.duration, 4)
    for key in ("rules", "mode", "transport", "client", "kind", "observed", "baseline", "known", "race"):
        if key in info:
            case[key] = info[key]
    # Each phase's decision takes the phases before it into account: the
    # last one is the case's.
    for key in ("outcome", "verdict", "failure_kind", "summary", "detail", "findings"):
        if info.get(key) is not None:
            case[key] = info[key]
        elif key in ("summary", "detail", "failure_kind", "findings"):
            case.pop(key, None)


def _stop_failures(state):
    """The shared servers whose stop went wrong (they did not stop, or
    crashed on the way out) when their pool stopped them, after a case
    failed or at the end of the run (the workers recorded them): each a case
    of U-STOP-1, decided as any other."""
    path = state.report_dir / STOP_FAILURES
    out = []
    for i, line in enumerate(path.read_text().splitlines() if path.exists() else []):
        seen = json.loads(line)
        phases = [outcome.Phase("setup", "passed"), outcome.Phase("call", "passed"),
                  outcome.Phase("teardown", "failed", seen["kind"], seen["message"])]
        expected = state.baseline.expectation(seen["name"], [STOP_RULE]) if state.baseline else None
        cell = outcome.cell_of(seen)
        race = state.baseline.race([STOP_RULE], cell) if state.baseline and not expected else None
        # One stop, not repeatable: one failure as the race is the race.
        run = outcome.RaceRun(race, state.alpha or outcome.alpha_for(1), more=False, repeatable=False) if race else None
        decided = outcome.classify(phases, expected, race=run)
        facts, _ = _known(expected, race, [STOP_RULE])
        name = seen["name"] + (f"#{i + 1}" if any(c["id"].endswith(f"::{seen['name']}") for c in out) else "")
        out.append({"id": f"harness/plugin/fixtures.py::{name}", "rules": [STOP_RULE],
                    "mode": seen["mode"],
                    "transport": seen["transport"], "kind": "promise", "duration_s": 0.0, **facts,
                    "outcome": decided["outcome"], "verdict": decided["verdict"], "failure_kind": decided["kind"],
                    "summary": decided["summary"], "detail": decided["detail"],
                    **{k: decided[k] for k in ("race", "findings") if decided.get(k)}})
    return out


def _provenance(config, state):
    """What a run was, beside what it found: enough to tell two runs'
    conditions apart (results.json "provenance")."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    return {
        "suite_commit": commit,
        "timeout_factor": deadlines.factor(),
        "jobs": getattr(config.option, "numprocesses", None) or 1,
        "selection": {"rule": config.getoption("rule"), "mode": config.getoption("mode"),
                      "transport": config.getoption("transport"), "keyword": config.getoption("keyword") or None,
                      "markers": config.getoption("markexpr") or None, "interop": config.getoption("interop"),
                      "args": list(config.args)},
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(x, 2) for x in state.load_at_start],
        "baseline_version": state.baseline.version if state.baseline else None,
    }


def pytest_collectreport(report):
    """A case file that does not import holds cases that never run: the
    run is incomplete, whatever the others say."""
    if report.failed and shared.current is not None:
        shared.current.uncollected.append(report.nodeid)


def _interrupted(session, exitstatus):
    """Whether the run stopped before every selected case ran (Ctrl-C, a
    signal, -x/--maxfail, a case file that could not be collected)."""
    return (exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop is not False
            or session.shouldfail is not False or bool(session.config.conformance.uncollected))


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput"):
        return
    state = config.conformance
    interrupted = _interrupted(session, exitstatus)
    if state.mhd is None or not (state.cases or interrupted):
        return  # no run: the server could not be built, or nothing was selected
    # A run interrupted before its first case ended writes every report too,
    # each saying INTERRUPTED.
    cases = list(state.cases.values()) + _stop_failures(state)
    data = results.build(cases, state.catalog, state.mhd, time.monotonic() - state.started,
                         config.conformance_transports, state.baseline.path if state.baseline.path
                         and state.baseline.path.exists() else None, volume=transfer.volume(),
                         mutant=state.mutant, interrupted=interrupted,
                         shard=config.getoption("shard"), shard_plan=state.shard_plan)
    data["warnings"] = list(state.warnings)
    data["provenance"] = _provenance(config, state)
    if not data["gate"]["passed"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    results.write(state.report_dir, data, state.catalog)
    state.results = data
    # What the next run's shards are balanced by; not a shard's, so that
    # every shard of one run reads the same durations.
    if not state.mutant and not config.getoption("shard"):
        durations.record(state.mhd["version"], cases)
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is not None:  # the verdict in junit.xml too, as testsuite properties
        xml.add_global_property("gate", data["gate"]["headline"])
        xml.add_global_property("interrupted", str(data["interrupted"]).lower())
    if config.getoption("update_baseline") and cases:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        baselines.write_updated(state.baseline, [cases], out=(tr.write_line if tr else print))


def junit_known_apart(config):
    """After junitxml wrote its file (at the session's finish): known
    deviations apart from skips."""
    path = config.getoption("xmlpath", None)
    if hasattr(config, "workerinput") or not path or not os.path.exists(path) or not os.path.getsize(path):
        return
    junit.known_apart(path)
