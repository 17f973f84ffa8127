"""FAULT: what the system may do under MHD (rule catalogue, FAULT).

The faults are injected in the reference server's process by an
environment, servers/faults.c (harness/faults.py names its schedules): not
a mutant of MHD, every result it makes a POSIX system may give."""

import pytest

from harness import faults, leaks
from harness.checks import ECHO_ONCE, api_story, echo_and_finish, echo_counted, expect_101, expect_echo
from harness.deadlines import scaled
from harness.server import EventTimeout
from harness.streams import QUIET_SECONDS, WireError

# Bytes each way: under faults a few KiB already meet every partial result;
# at most 64 KiB, so that a case costs what its checks cost.
STREAM_BYTES = 64 * 1024


def echo_under(private_server, connect, schedule):
    """The counted stream echoed both ways at once under `schedule`, then
    the script's CLOSE right after the echo's last bytes."""
    srv = private_server(faults=schedule)
    with faults.named(srv):
        echo_counted(connect(srv), STREAM_BYTES)
        faults.check_struck(srv, schedule)


@pytest.mark.rule("U-FAULT-1")
def test_streams_exact_with_small_buffers(private_server, connect):
    """Tiny socket buffers on the upgraded TCP socket and the socket pair:
    the kernel itself gives reads and writes short counts and EAGAIN."""
    echo_under(private_server, connect, "small-buffers")


@pytest.mark.rule("U-FAULT-1")
@pytest.mark.tls_only  # over plain HTTP MHD makes no read or write once upgraded
@pytest.mark.parametrize("schedule", ["eintr", "enobufs", "all-partial"])
def test_tls_forwarding_exact_when_calls_fail(private_server, connect, schedule):
    """MHD's forwarding between TLS and the socket pair, with one in three
    of its calls interrupted (EINTR) or short of resources (ENOBUFS)."""
    echo_under(private_server, connect, schedule)


@pytest.mark.rule("U-FAULT-1")
@pytest.mark.tls_only
@pytest.mark.modes("M-SELECT", "M-POLL", "M-POOL-SELECT", "M-POOL-POLL", "M-TPC", "M-TPC-POLL")  # MHD's own select() or poll()
def test_tls_forwarding_exact_when_waits_fail(private_server, connect):
    """One in three of MHD's select() (ENOMEM) and poll() (EAGAIN) calls
    fails while the upgraded connection is open: a wait that, as POSIX says
    of poll()'s EAGAIN, may succeed when tried again."""
    echo_under(private_server, connect, "wait-fails")


# -- U-FAULT-2: an upgrade MHD cannot set up -------------------------------

def after_the_101(conn, srv):
    """What the client sees once it sent an upgrade request, and whether
    the handler ran: the 101 (or what came instead), then either the echo
    of a working upgrade, or the end alone."""
    try:
        head = conn.read_head()
    except WireError:
        _, end = conn.read_to_end()
        return f"no response, then the end ({end})", False
    if head.status != 101:
        # An answer instead of the upgrade (the application's, when MHD
        # gave it no upgrade response): whole, on a connection kept open.
        conn.read_body()
        return f"{head.status_line()}, a whole response instead", False
    # Either the handler runs or MHD closes; nothing is sent before it is
    # known which, so that the end the client sees does not depend on it.
    first = srv.wait_event(lambda e: e.get("rid") == conn.rid and e["ev"] in ("upgraded", "conn_closed"),
                           QUIET_SECONDS, f"'upgraded' or 'conn_closed' event for rid {conn.rid}")
    if first["ev"] == "upgraded":
        # It worked: how it ends after CLOSE is for the ACT rules.
        echo_and_finish(conn)
        return f"{head.status_line()}, then the echo: the upgrade works", True
    _, end = conn.read_to_end()
    return f"{head.status_line()}, then the end ({end})", False


def upgrade_under(private_server, connect, measure, schedule):
    srv = private_server(faults=schedule)
    before = leaks.snapshot(connect, srv)
    conn = connect(srv)
    with faults.named(srv):
        conn.request(srv.url("/upgrade", **ECHO_ONCE))
        saw, handler_ran = after_the_101(conn, srv)
        faults.check_struck(srv, schedule)
        measure({"client_saw": saw, "handler_ran": handler_ran})
        if not handler_ran:
            assert not conn.events("upgraded"), (
                f"MHD could not set the upgrade up and the client saw {saw!r}, but the upgrade handler ran")
        other = connect(srv)
        other.request("/hello", upgrade=None)
        head = other.read_head()
        assert (head.status, other.read_body()) == (200, b"hello\n"), (
            f"after an upgrade it could not set up, MHD answered another client's GET /hello with "
            f"{head.status_line()!r}")
        other.close()
        conn.close()
        leaks.check(connect, srv, before)
    return conn


@pytest.mark.rule("U-FAULT-2")
def test_upgrade_without_memory(private_server, connect, measure):
    """MHD's first calloc() after the 101 (its upgrade handle) fails."""
    upgrade_under(private_server, connect, measure, "no-memory")


@pytest.mark.rule("U-FAULT-2")
@pytest.mark.parametrize("allocation", ["response", "its-header"])
def test_upgrade_response_without_memory(private_server, connect, measure, allocation):
    """The application's MHD_create_response_for_upgrade() meets a failed
    calloc(): the response's own, or its "Connection: Upgrade" header's.
    MHD must say so (NULL), not crash; the application then answers
    without an upgrade."""
    conn = upgrade_under(private_server, connect, measure, f"no-memory-for-{allocation}")
    created = conn.wait_event("create_response", what="upgrade")
    assert not created["result"], (
        f"MHD_create_response_for_upgrade() returned a response although the calloc() of its {allocation} failed")


@pytest.mark.rule("U-FAULT-2")
@pytest.mark.tls_only  # only TLS forwarding needs a socket pair
def test_upgrade_without_socket_pair(private_server, connect, measure):
    upgrade_under(private_server, connect, measure, "no-socket-pair")


@pytest.mark.rule("U-FAULT-2")
@pytest.mark.tls_only
def test_upgrade_with_socket_pair_above_fd_setsize(private_server, connect, measure):
    """The pair's descriptors are 1024 or more, as when the lower ones are
    all in use: a select() loop cannot watch them, poll() and epoll can."""
    upgrade_under(private_server, connect, measure, "socket-pair-above-fd-setsize")


@pytest.mark.rule("U-FAULT-2")
@pytest.mark.tls_only
@pytest.mark.modes("M-EPOLL", "M-POOL", "M-EXT-EPOLL")  # the modes that add the pair to an epoll set
@pytest.mark.parametrize("nth", [1, 2], ids=["first-add", "second-add"])
def test_upgrade_when_epoll_refuses(private_server, connect, measure, nth):
    """The first (the TCP socket) or the second (MHD's end of the pair)
    EPOLL_CTL_ADD of the upgrade fails with ENOMEM."""
    upgrade_under(private_server, connect, measure, f"epoll-ctl-fails-{nth}")


# -- U-FAULT-3: the client's connection reset ------------------------------

# The application is still sending when the client resets: more than every
# buffer between them holds (with the client reading nothing).
UNREAD_BYTES = 4 << 20
RESET_POINTS = {
    # after one echo, with nothing in flight
    "idle": {"then": "echo"},
    # while the application's send() waits for room
    "while-sending": {"then": "send-close", "n": UNREAD_BYTES},
}


@pytest.mark.rule("U-FAULT-3")
@pytest.mark.parametrize("point", list(RESET_POINTS))
def test_reset_under_upgraded_connection(private_server, connect, point):
    srv = private_server()
    before = leaks.snapshot(connect, srv)
    conn = connect(srv)
    conn.request(srv.url("/upgrade", **RESET_POINTS[point]))
    expect_101(conn)
    if point == "idle":
        expect_echo(conn)
    else:
        conn.read_exact(1)
    conn.reset()
    try:
        close = conn.wait_event("action", action="close")
    except EventTimeout:
        raise AssertionError(
            f"the client reset the connection ({point}), and the application saw neither the end of "
            f"the stream nor an error on its socket: its script had not ended {scaled(QUIET_SECONDS):.1f} s "
            f"after the reset [{api_story(conn)}]") from None
    assert close["result"], f"after the client's reset ({point}), MHD_UPGRADE_ACTION_CLOSE returned MHD_NO"
    conn.wait_event("conn_closed")
    leaks.check(connect, srv, before)
