"""The gate's plumbing in pytest: each phase of a case becomes an
outcome.Phase, outcome.classify decides (with the baseline's expectation),
pytest's own report is made to say the same (terminal, junit.xml, exit
status), and at the end of the session the intermittent bounds are judged
and the reports written."""

import ssl
import time

import pytest
from _pytest import junitxml  # its stash key: the verdict as a testsuite property

from .. import baseline as baselines
from .. import leaks, outcome, transfer
from ..client import WireError
from ..reports import results
from ..server import EventTimeout, ServerDied
from ..tracebacks import hidden as _hidden
from . import state as shared
from .fixtures import MeasureMismatch
from .state import (CALL_PASSED, CONNS, EXPECTED, FAILURE_SHOWN, OBSERVED, PHASES, SERVER_ERROR_SHOWN, WS_SESSIONS,
                    item_rules)

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


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


def _detail(item, call, lead):
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
    for cls, kind in ((leaks.LeakError, "leak"), (ServerDied, "server-death"), (EventTimeout, "timeout"),
                      (WireError, "wire"), (MeasureMismatch, "measure"), (AssertionError, "assertion"),
                      (ConnectionError, "wire"), (ssl.SSLError, "wire")):
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


def _rewrite(rep, decided, expected, shown):
    """Makes pytest's view (terminal, junit, exit status) the gate's; a
    case the gate fails is failed once (`shown`: an earlier phase's report
    already failed it), not again at its teardown."""
    if decided["outcome"] == "expected-deviation":
        if rep.when == "teardown":
            rep.outcome = "passed"  # the call's report already counted the case
        else:
            rep.outcome, rep.wasxfail = "skipped", f"baseline {expected.version}: {expected.rule} {expected.observed}"
    elif decided["outcome"] in ("failed", "unrecorded") and not rep.failed and not shown:
        rep.outcome, rep.longrepr = "failed", decided["detail"]
    elif decided["outcome"] == "failed" and expected is not None:
        rep.sections.append(("conformance: not the known deviation", decided["detail"].split("\n", 1)[0]))


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
        # junitxml writes the properties of a case's teardown report, which
        # copies the item's.
        item.user_properties.append(("rules", " ".join(info["rules"])))
    expected = item.stash.get(EXPECTED, None)
    if expected is not None:
        info["baseline"] = "intermittent" if expected.intermittent else "deviation"
        info["known"] = {"rule": expected.rule, "observed": expected.observed, "evidence": expected.evidence}
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
    decided = outcome.classify(phases, expected, measure)
    info.update(outcome=decided["outcome"], verdict=decided["verdict"], failure_kind=decided["kind"],
                summary=decided["summary"])
    if decided["outcome"] not in ("passed",):
        lead = decided["detail"]
        info["detail"] = lead if decided["outcome"] == "skipped" else _detail(item, call, lead)
    if call.when == "call" and OBSERVED in item.stash:
        info["observed"] = item.stash[OBSERVED]
    _rewrite(rep, decided, expected, item.stash.get(FAILURE_SHOWN, False))
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
    for key in ("rules", "mode", "transport", "kind", "observed", "baseline", "known"):
        if key in info:
            case[key] = info[key]
    # Each phase's decision takes the phases before it into account: the
    # last one is the case's.
    for key in ("outcome", "verdict", "failure_kind", "summary", "detail"):
        if info.get(key) is not None:
            case[key] = info[key]
        elif key in ("summary", "detail", "failure_kind"):
            case.pop(key, None)


def judge_intermittent(baseline, cases):
    """{rule: {failures, attempts, max_failure_rate, min_attempts, exceeded}}
    for the baseline's intermittent entries: how often their cases failed
    this run. Above the bound, the cases that failed fail the gate."""
    rates = {}
    for rule, value in (baseline.deviations if baseline else {}).items():
        for entry in baselines.entries(value):
            bound = entry.get("intermittent")
            if not bound:
                continue
            mine = [c for c in cases if rule in c["rules"] and c.get("baseline") == "intermittent"
                    and (baseline.expected_deviation(c["id"].split("::")[-1], c["rules"]) or (None, None))[1]
                    is entry]
            if not mine:
                continue
            failures, attempts = outcome.rate(mine)
            why = outcome.judge_rate(bound, failures, attempts)
            rates[rule] = dict(failures=failures, attempts=attempts, **bound, exceeded=why is not None)
            if why:
                for case in mine:
                    if case["outcome"] == "expected-deviation":
                        case["outcome"], case["too_often"] = "failed", True
                        case["summary"] = f"{rule} failed more often than its baseline allows: {why}"
                        case["detail"] = case["summary"] + "\n" + case.get("detail", "")
    return rates


def _interrupted(session, exitstatus):
    """Whether the run stopped before every selected case ran (Ctrl-C, a
    signal, -x/--maxfail)."""
    return (exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop is not False
            or session.shouldfail is not False)


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput"):
        return
    state = config.conformance
    if state.mhd is None or not state.cases:
        return
    cases = list(state.cases.values())
    rates = judge_intermittent(state.baseline, cases)
    if any(r.get("exceeded") for r in rates.values()) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    warnings_file = state.report_dir / "warnings.txt"
    warnings = warnings_file.read_text().splitlines() if warnings_file.exists() else []
    data = results.build(cases, state.catalog, state.mhd, time.monotonic() - state.started,
                         config.conformance_transports, state.baseline.path if state.baseline.path
                         and state.baseline.path.exists() else None, volume=transfer.volume(),
                         mutant=state.mutant, interrupted=_interrupted(session, exitstatus))
    data["warnings"] = [w for w in warnings if not w.startswith("  ")]
    for rule, rate in rates.items():
        data["rules"][rule]["intermittent_rate"] = rate
    results.write(state.report_dir, data, state.catalog)
    state.results = data
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is not None:  # the verdict in junit.xml too, as testsuite properties
        xml.add_global_property("gate", data["gate"]["headline"])
        xml.add_global_property("interrupted", str(data["interrupted"]).lower())
    if config.getoption("update_baseline") and cases:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        baselines.write_updated(state.baseline, cases, out=(tr.write_line if tr else print))

