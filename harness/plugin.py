"""The pytest plugin of the suite (loaded by pytest.ini): options, the
mode x transport parametrization, the reference-server pool, the client
fixtures, baselines as strict expected failures, and the reports."""

import fnmatch
import itertools
import os
import pathlib
import sys
import threading
import time

import pytest
from _pytest import junitxml  # its stash key: the verdict as a testsuite property

import ssl

from . import baseline as baselines
from . import build, catalog, certs, leaks, modes, outcome, results, transfer, ws
from .client import Conn, WireError
from .server import EventTimeout, RefServer, ServerDied
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONNS = pytest.StashKey()
OBSERVED = pytest.StashKey()
EXPECTED = pytest.StashKey()  # outcome.Expectation: the baseline lists the case as a deviation
PHASES = pytest.StashKey()  # outcome.Phase of each phase run so far
SERVER_ERROR_SHOWN = pytest.StashKey()  # the case itself already failed on the server's crash
WS_SESSIONS = pytest.StashKey()  # the case's WebSocket client sessions, for its report
CALL_PASSED = pytest.StashKey()  # the case's own checks passed (then its leaks are checked)
FAILURE_SHOWN = pytest.StashKey()  # a report of an earlier phase already failed the case
_rid_counter = itertools.count(1)
_state = None  # the session's State, for hooks that get no config


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

    def build_value(self, name):
        """A value from the CMake cache of the server build this run uses
        (per prefix, and its own folder with --sanitize)."""
        return build.cached_value(self.prefix, name, self.sanitize)


def pytest_addoption(parser):
    g = parser.getgroup("conformance", "MHD upgrade conformance")
    g.addoption("--mhd", metavar="PREFIX", default=os.environ.get("CONFORMANCE_MHD") or None,
                help="MHD install prefix to test (default: the system's MHD, found by pkg-config)")
    g.addoption("--report", metavar="DIR", default=str(ROOT / "reports" / "latest"),
                help="folder for results.json, summary.md and junit.xml (default: reports/latest)")
    g.addoption("--rule", metavar="PATTERN", action="append", default=[],
                help="run only cases checking a matching rule ID, e.g. U-EXTRA-* (repeatable)")
    g.addoption("--mode", metavar="MODE", action="append", default=[],
                help="run only in this mode: M-EPOLL or epoll, ... (repeatable)")
    g.addoption("--transport", metavar="T", action="append", default=[], choices=modes.KNOWN_TRANSPORTS,
                help="run over this transport: plain, https (repeatable; default: both)")
    g.addoption("--volume", metavar="N", type=int,
                help="multiply every transfer by N, for a thorough run (default 1; CONFORMANCE_VOLUME)")
    g.addoption("--baseline", metavar="FILE",
                help="baseline file to gate against (default: baselines/<MHD version>.json; 'none': no baseline)")
    g.addoption("--mutant", metavar="NAME",
                help="run every reference server with this mutant MHD (servers/mutants.c): the suite's self-test")
    g.addoption("--sanitize", action="store_true",
                help="build and run the reference server with AddressSanitizer and UBSan")
    g.addoption("--update-baseline", action="store_true",
                help="after the run, write what it saw into the baseline file (shows the diff first)")


def pytest_configure(config):
    config.addinivalue_line("markers", "rule(*ids): the catalogue rule IDs a case checks")
    config.addinivalue_line("markers", "modes(*ids): the only modes a case applies to (e.g. M-TPC)")
    config.addinivalue_line("markers", "plain_only: the rule is checked over plain HTTP only")
    config.addinivalue_line("markers", "tls_only: a case about TLS itself, run over HTTPS only")
    if config.getoption("mode"):
        try:
            config.conformance_modes = [modes.lookup(m) for m in config.getoption("mode")]
        except ValueError as e:
            raise pytest.UsageError(str(e))
    else:
        config.conformance_modes = list(modes.MODES)
    if getattr(config.option, "xmlpath", None) is None and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(pathlib.Path(config.getoption("report")) / "junit.xml")
    config.conformance_transports = tuple(config.getoption("transport")) or modes.TRANSPORTS
    if config.getoption("volume") is not None:
        if config.getoption("volume") < 1:
            raise pytest.UsageError(f"--volume {config.getoption('volume')}: must be 1 or more")
        os.environ[transfer.VOLUME_ENV] = str(config.getoption("volume"))  # xdist workers inherit it
    config.conformance = State(config)
    global _state
    _state = config.conformance


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    state = session.config.conformance
    if not hasattr(session.config, "workerinput"):
        (state.report_dir / "warnings.txt").unlink(missing_ok=True)
    try:
        state.binary = build.ensure_server(state.prefix, state.sanitize)
        info = build.server_version(state.binary, _server_env(session.config, state))
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
    except baselines.BaselineError as e:
        pytest.exit(str(e), returncode=3)
    if update and state.baseline.path is None:
        pytest.exit("--update-baseline needs a baseline file to write; --baseline none has none", returncode=4)
    if update and state.mutant:
        pytest.exit(f"--update-baseline refuses a run against the mutant {state.mutant!r}: its failures are the "
                    "mutant's, not MHD's", returncode=4)
    xml = session.config.stash.get(junitxml.xml_key, None)
    if xml is not None and state.mutant:
        xml.add_global_property("mutant", state.mutant)
    _start_progress(session.config)
    state.mhd = {
        "version": info["mhd_version"],
        "prefix": state.build_value("MHD_PREFIX") or state.prefix,
        "feature_upgrade": info["feature_upgrade"],
        "feature_tls": info["feature_tls"],
    }


def pytest_report_header(config):
    state = config.conformance
    if state.mhd is None:
        return None
    base = state.baseline.path if state.baseline and state.baseline.path and state.baseline.path.exists() else "none"
    return [f"MHD {state.mhd['version']} from {state.mhd['prefix']}; server {state.binary}",
            f"baseline: {base}"] + ([f"MUTANT: {state.mutant} (a self-test: failures are the mutant's, not MHD's)"]
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


def item_rules(item):
    return [r for mark in item.iter_markers("rule") for r in mark.args]


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
        callspec = getattr(item, "callspec", None)
        if callspec and "mode" in callspec.params and not isinstance(callspec.params["mode"], modes.Mode):
            drop.append(item)  # no mode/transport left for it (e.g. plain-only in an HTTPS-only run)
            continue
        keep.append(item)
        # `-k U-EXTRA-1` (or `-k U-EXTRA`, a family) selects by rule too.
        item.extra_keyword_matches.update(rules)
        expected = state.baseline.expectation(item.name, rules) if state.baseline else None
        if expected:
            item.stash[EXPECTED] = expected
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = interleaved(keep)


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


# -- the reference-server pool ------------------------------------------------
class ServerPool:
    """One server per (mode, transport, options), started on first use and
    reused by every case that asks for the same; a dead one is replaced."""

    def __init__(self, binary, env=None, pki=None):
        self.binary = binary
        self.env = env
        self.pki = pki  # callable: the test PKI, made on first HTTPS use
        self.servers = {}

    def get(self, mode, transport, **options):
        key = (mode.id, transport, tuple(sorted(options.items())))
        srv = self.servers.get(key)
        if srv is not None and srv.alive():
            return srv
        tls = self.pki() if transport == "https" else None
        srv = RefServer(self.binary, mode, transport, env=self.env, tls=tls, **options)
        self.servers[key] = srv
        return srv.start()

    def discard(self, srv):
        for key, s in list(self.servers.items()):
            if s is srv:
                del self.servers[key]
        srv.stop()

    def stop_all(self):
        """Stops every server; returns those that did not stop cleanly."""
        unclean = []
        for srv in self.servers.values():
            srv.stop()
            if srv.stop_problem():
                unclean.append(srv)
        self.servers.clear()
        return unclean


_pki = None


def pki(request):
    """The session's test PKI (made on first use: plain runs need none)."""
    global _pki
    if _pki is None:
        _pki = certs.TestPKI(request.getfixturevalue("tmp_path_factory").mktemp("pki"))
    return _pki


def _warn(state, text):
    """A problem outside any case: appended to <report>/warnings.txt (shared
    by xdist workers), then reported in results.json and at the end."""
    state.report_dir.mkdir(parents=True, exist_ok=True)
    with open(state.report_dir / "warnings.txt", "a") as f:
        f.write(text.replace("\n", "\n  ") + "\n")


def _server_env(config, state, detect_leaks=False):
    """The reference server's extra environment: the mutant MHD chosen, and
    the sanitizers' settings (with `detect_leaks`, LeakSanitizer reports at
    exit: for a server that a case stops, U-STOP-1)."""
    env = {}
    mutant = config.getoption("mutant")
    if mutant:
        env.update(LD_PRELOAD=str(state.binary.parent / "libconformance_mutants.so"), CONFORMANCE_MUTANT=mutant)
    if config.getoption("sanitize"):
        # A report ends the server (abort): the case that was running sees
        # the crash with the report in the server's stderr lines. The mutant
        # library is preloaded ahead of ASan's runtime on purpose.
        env.update(ASAN_OPTIONS=f"abort_on_error=1:detect_leaks={int(detect_leaks)}:verify_asan_link_order=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return env or None


@pytest.fixture(scope="session")
def server_pool(request):
    state = request.config.conformance
    pool = ServerPool(state.binary, _server_env(request.config, state), lambda: pki(request))
    yield pool
    for srv in pool.stop_all():
        # Not a case's failure (no case is running), but never silent.
        _warn(state, f"{srv!r} {srv.stop_problem()}\n" + srv.last_lines())


def _client_context(request, server):
    """The TLS client context that trusts the test CA (None over plain HTTP)."""
    return pki(request).client_context() if server.transport == "https" else None


def _new_rid(tag=""):
    """A request id unique in this run. Fixed length, so that request sizes
    (and what they leave in MHD's buffer) do not change with the count."""
    return f"{tag}{os.getpid():0{7 - len(tag)}d}-{next(_rid_counter):07d}"


def _stats_conn(request):
    """A Conn for the leak check's GET /stats, not among the case's own."""
    def open_conn(srv):
        return Conn(srv, _new_rid("s"), tls_context=_client_context(request, srv))
    return open_conn


@pytest.fixture
def make_server(request, server_pool, mode, transport):
    """make_server(flags=..., timeout=..., memory_limit=...,
    connection_limit=...) -> a running RefServer in this case's mode.
    A case that passes must leave each server as it found it (harness/leaks.py)."""
    used = []
    before = {}  # server -> its leak figures when this case first used it
    open_stats = _stats_conn(request)

    def make(**options):
        srv = server_pool.get(mode, transport, **options)
        used.append(srv)
        if srv not in before:
            before[srv] = leaks.snapshot(open_stats, srv)
        return srv

    yield make
    dead = [s for s in used if not s.alive()]
    for srv in dead:
        server_pool.discard(srv)
    if dead and not request.node.stash.get(SERVER_ERROR_SHOWN, False):
        raise ServerDied(dead[0].died_message("during this case"))
    if request.node.stash.get(CALL_PASSED, False):
        # Only a case that kept its promise must also have cleaned up.
        for conn in request.node.stash.get(CONNS, []):
            conn.close()
        for srv, figures in before.items():
            leaks.check(open_stats, srv, figures)
    else:
        # What failed may leave a connection open to its idle limit: the
        # next case gets a fresh server, so that no leftover of this one
        # can end during a later case and hide a leak of that case.
        for srv in set(used) - set(dead):
            server_pool.discard(srv)


@pytest.fixture
def private_server(request, mode, transport):
    """private_server(detect_leaks=False, **options) -> a server of this
    case's own, not shared with any other case (for cases that stop or
    break it); stopped at the end of the case. With `detect_leaks` and
    --sanitize, a leak makes it exit non-zero when it stops."""
    state = request.config.conformance
    mine = []

    def start(detect_leaks=False, **options):
        tls = pki(request) if transport == "https" else None
        srv = RefServer(state.binary, mode, transport, env=_server_env(request.config, state, detect_leaks),
                        tls=tls, **options)
        mine.append(srv)
        return srv.start()

    yield start
    # Died during the case, not stopped by it (STOP cases stop their own).
    died = [srv for srv in mine if not srv.alive() and srv.stopped_by is None]
    for srv in mine:
        srv.stop()
        if srv.stop_problem():
            _warn(state, f"{srv!r} (private to {request.node.name}) {srv.stop_problem()}\n" + srv.last_lines())
    if died and not request.node.stash.get(SERVER_ERROR_SHOWN, False):
        raise ServerDied(died[0].died_message("during this case"))


@pytest.fixture
def server(make_server):
    """The default server of this case's mode: MHD_ALLOW_UPGRADE only."""
    return make_server()


@pytest.fixture
def connect(request):
    """connect(server, handshake=True) -> Conn with a request id unique in
    this run; handshake=False leaves the TLS handshake to conn.handshake()."""
    conns = []
    request.node.stash[CONNS] = conns

    def open_conn(server, handshake=True, sockbuf=None):
        conn = Conn(server, _new_rid(), tls_context=_client_context(request, server), handshake=handshake,
                    sockbuf=sockbuf)
        conns.append(conn)
        return conn

    yield open_conn
    for conn in conns:
        conn.close()


@pytest.fixture
def control(request):
    """control(server, path) -> the status of GET path on a connection of
    its own (not among the case's in its report): the reference server's
    control requests, e.g. /release?of=RID."""
    def get(server, path):
        conn = Conn(server, _new_rid("c"), tls_context=_client_context(request, server))
        try:
            conn.request(path, upgrade=None)
            status = conn.read_head().status
            conn.read_body()
            return status
        finally:
            conn.close()
    return get


@pytest.fixture
def barrier(request):
    """barrier(server): returns once every event the server wrote before
    this call has reached the harness: a request of its own, whose event
    comes after them on the same channel. For cases that must see an event
    did not happen (the handler never ran) without waiting a deadline."""
    def sync(server):
        conn = Conn(server, _new_rid("b"), tls_context=_client_context(request, server))
        try:
            conn.request("/hello", upgrade=None)
            conn.read_head()
            conn.read_body()
            conn.wait_event("request")
        finally:
            conn.close()
    return sync


@pytest.fixture
def ws_session(request):
    """ws_session(server) -> ws.Session: a WebSocket client identity with a
    request id unique in this run (async with session.connect() as ws)."""
    def make(server):
        session = ws.Session(server, _new_rid(), _client_context(request, server))
        request.node.stash.setdefault(WS_SESSIONS, []).append(session)
        return session
    return make


@pytest.fixture
def observe(request):
    """observe(value): records a value in the results (e.g. a failure
    rate) without comparing it with anything; the case asserts the promise."""
    def record(value):
        request.node.stash[OBSERVED] = value
    return record


@pytest.fixture
def measure(request):
    """measure(value): records the observed value of a measure rule and
    checks it against the value the baseline recorded for this case."""
    state = request.config.conformance

    def record(value):
        request.node.stash[OBSERVED] = value
        known, expected = state.baseline.measure(request.node.name)
        if known and value != expected:
            raise MeasureMismatch(f"measured {value!r}; the baseline ({state.baseline.path.name}) recorded "
                                  f"{expected!r}")
    return record


class MeasureMismatch(AssertionError):
    """A measure case saw another value than its baseline recorded."""


# -- outcomes -------------------------------------------------------------
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
    state = _state
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


# -- progress ------------------------------------------------------------
QUIET_SECONDS = 10  # with no case finished for this long, say what runs


class Progress:
    """Names the cases still running when none has finished for
    QUIET_SECONDS (an HTTPS transfer against a slow MHD can take a while):
    a run that looks hung says what it waits for."""

    def __init__(self, write):
        self.write = write
        self.running = {}  # node id -> when it started
        self.last_end = self.last_said = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="conformance-progress", daemon=True)
        self.thread.start()

    def started(self, nodeid):
        with self.lock:
            self.running[nodeid] = time.monotonic()

    def finished(self, nodeid):
        with self.lock:
            self.running.pop(nodeid, None)
            self.last_end = time.monotonic()

    def _watch(self):
        while not self.stop.wait(1.0):
            now = time.monotonic()
            with self.lock:
                if now - max(self.last_end, self.last_said) < QUIET_SECONDS or not self.running:
                    continue
                self.last_said = now
                oldest = sorted(self.running.items(), key=lambda kv: kv[1])[:6]
                more = len(self.running) - len(oldest)
            names = ", ".join(f"{nodeid.split('::')[-1]} ({now - t:.0f} s)" for nodeid, t in oldest)
            self.write(f"conformance: no case finished for {now - self.last_end:.0f} s; running: {names}"
                       + (f" and {more} more" if more > 0 else ""))


_progress = None


def pytest_runtest_logstart(nodeid, location):
    if _progress is not None:
        _progress.started(nodeid)


def pytest_runtest_logfinish(nodeid, location):
    if _progress is not None:
        _progress.finished(nodeid)


def _start_progress(config):
    global _progress
    if hasattr(config, "workerinput") or _progress is not None:
        return

    def write(line):
        sys.stderr.write("\n" + line + "\n")
        sys.stderr.flush()
    _progress = Progress(write)


def pytest_unconfigure(config):
    global _progress
    if _progress is not None:
        _progress.stop.set()
        _progress = None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.conformance
    data = getattr(state, "results", None)
    if not data or hasattr(config, "workerinput") or os.environ.get("CONFORMANCE_CLI"):
        return  # ./conformance prints its own summary
    terminalreporter.section("upgrade conformance")
    terminalreporter.write_line(f"MHD {data['mhd']['version']} ({data['mhd']['prefix']}), "
                                f"baseline: {data['baseline'] or 'none'}")
    for line in results.terminal_lines(data):
        terminalreporter.write_line(line)
    for line in data.get("warnings", []):
        terminalreporter.write_line(f"WARNING: {line}", yellow=True)
    terminalreporter.write_line(f"reports: {state.report_dir}/results.json, summary.md, junit.xml, report.html")
    terminalreporter.write_line(data["gate"]["headline"], bold=True, red=not data["gate"]["passed"],
                                green=data["gate"]["passed"])
    for line in results.misbehaving_lines(data):
        terminalreporter.write_line(line)
