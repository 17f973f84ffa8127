"""The fixtures cases use: the reference-server pool and private servers,
connections, control requests, WebSocket sessions, and what a case records
(observe, measure). A case that passes must leave a shared server as it
found it (harness/leaks.py)."""

import contextlib
import itertools
import os

import pytest

from .. import certs, leaks, ws
from .. import faults as injected
from ..client import Conn
from ..server import RefServer, ServerDied
from ..tracebacks import hidden as _hidden
from .state import CALL_PASSED, CONNS, OBSERVED, SERVER_ERROR_SHOWN, WS_SESSIONS, record_stop_failure, server_env

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

_rid_counter = itertools.count(1)


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
        """Stops a server and drops it from the pool; returns it."""
        for key, s in list(self.servers.items()):
            if s is srv:
                del self.servers[key]
        srv.stop()
        return srv

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


@pytest.fixture(scope="session")
def server_pool(request):
    state = request.config.conformance
    pool = ServerPool(state.binary, server_env(request.config, state), lambda: pki(request))
    yield pool
    for srv in pool.stop_all():
        # The pool owns a shared server at the end: its stop, after every
        # case that used it cleaned up (U-STOP-1), is a finding of its own.
        record_stop_failure(state, srv, srv.stop_failure("at the end of the run, after every case that used it "
                                                         "had closed its connections"))


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
    state = request.config.conformance
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
        # The pool owns a shared server: a stop that goes wrong here is a
        # finding of its own (U-STOP-1), not of the case that failed.
        for srv in set(used) - set(dead):
            if server_pool.discard(srv).stop_problem():
                record_stop_failure(state, srv, srv.stop_failure(
                    f"when it was stopped after {request.node.name} failed"))


@pytest.fixture
def private_server(request, mode, transport):
    """private_server(detect_leaks=False, one_arena=False, faults=None,
    **options) -> a server of this case's own, not shared with any other
    case (for cases that stop or break it); stopped at the end of the case.
    `faults` names a schedule of harness/faults.py that the system injects
    under MHD, seeded per case (--fault-seed N replays another). With
    `detect_leaks` and --sanitize, a leak makes it exit non-zero when it
    stops. With `one_arena`, glibc's malloc keeps one arena for all threads:
    a new thread's arena would count as heap in use (the heap figure of
    /stats) and grows with the threads that happen to run at once."""
    state = request.config.conformance
    mine = []

    def start(detect_leaks=False, one_arena=False, faults=None, **options):
        tls = pki(request) if transport == "https" else None
        if faults:
            faults = injected.environment(faults, injected.seed_for(request.node.nodeid,
                                                                    request.config.getoption("fault_seed")))
        env = server_env(request.config, state, detect_leaks, faults)
        if one_arena:
            env = dict(env or {}, GLIBC_TUNABLES="glibc.malloc.arena_max=1")
        srv = RefServer(state.binary, mode, transport, env=env, tls=tls, **options)
        mine.append(srv)
        return srv.start()

    yield start
    # Died during the case, not stopped by it (STOP cases stop their own,
    # and judge that stop themselves).
    died = [srv for srv in mine if not srv.alive() and srv.stopped_by is None]
    ours = [srv for srv in mine if srv.stopped_by is None and srv not in died]
    for srv in mine:
        srv.stop()
    if died and not request.node.stash.get(SERVER_ERROR_SHOWN, False):
        raise ServerDied(died[0].died_message("during this case"))
    unstopped = [srv for srv in ours if srv.stop_problem()]
    if unstopped:
        raise unstopped[0].stop_failure("at the end of this case")


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


@contextlib.contextmanager
def _own_request(request, server, path, tag):
    """A plain GET of `path` on a connection of the harness's own (its
    request id tagged `tag`, not among the case's in its report), answer
    read: yields (the connection, the answer's head), closes it after."""
    conn = Conn(server, _new_rid(tag), tls_context=_client_context(request, server))
    try:
        conn.request(path, upgrade=None)
        head = conn.read_head()
        conn.read_body()
        yield conn, head
    finally:
        conn.close()


@pytest.fixture
def control(request):
    """control(server, path) -> the status of GET path on a connection of
    its own (not among the case's in its report): the reference server's
    control requests, e.g. /release?of=RID."""
    def get(server, path):
        with _own_request(request, server, path, "c") as (_, head):
            return head.status
    return get


@pytest.fixture
def barrier(request):
    """barrier(server): returns once every event the server wrote before
    this call has reached the harness: a request of its own, whose event
    comes after them on the same channel. For cases that must see an event
    did not happen (the handler never ran) without waiting a deadline."""
    def sync(server):
        with _own_request(request, server, "/hello", "b") as (conn, _):
            conn.wait_event("request")
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


@pytest.fixture(scope="session")
def real_clients_session():
    """Ends what the real clients share across cases (the session's
    browser) when the session ends, not only when the process exits."""
    yield
    from ..interop import jsclients
    jsclients.stop_browser()


@pytest.fixture
def interop(request, real_clients_session):
    """interop(server, client) -> InteropSession: a real WebSocket client
    (harness/interop, by name) to `server`'s /ws, with a request id unique
    in this run; ended after the case. Over HTTPS it trusts the test CA."""
    from ..interop.session import InteropSession  # only interop runs load the clients
    sessions = []

    def make(server, client):
        tls = pki(request) if server.transport == "https" else None
        session = InteropSession(server, _new_rid("i"), client, tls)
        sessions.append(session)
        request.node.stash.setdefault(WS_SESSIONS, []).append(session)
        return session
    yield make
    for session in sessions:
        session.end()


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

