"""TMO: connection timeouts before and after the upgrade (rule catalogue, TMO)."""

import pytest

from harness.checks import expect_101, expect_echo, finish
from harness.client import RID_HEADER
from harness.deadlines import scaled

TIMEOUT = 1  # MHD_OPTION_CONNECTION_TIMEOUT of these servers, seconds


@pytest.mark.rule("U-TMO-1")
def test_no_timeout_after_upgrade(make_server, connect):
    conn = connect(make_server(timeout=TIMEOUT))
    conn.request(conn.server.url("/upgrade", then="echo", until=len(b"still-here")))
    expect_101(conn)
    # Idle for 2.5 times the timeout: the connection must neither end nor
    # deliver anything meanwhile (waiting on that, with a deadline).
    data, end = conn.read_to_end(seconds=2.5 * TIMEOUT, scale=False)  # the idle period is the test
    assert (data, end) == (b"", "open"), (
        f"the upgraded connection, idle, ended ({end}) within {2.5 * TIMEOUT} s with a "
        f"{TIMEOUT} s connection timeout")
    expect_echo(conn, b"still-here")
    finish(conn)


# Where a request stalls: inside its head (the access handler cannot have
# run), or inside its body (it has: the scenario waits for the whole body
# before it would queue the upgrade).
STALLS = {
    "in-head": lambda url, rid: (f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n{RID_HEADER}: {rid}\r\n"),
    "in-body": lambda url, rid: (f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n{RID_HEADER}: {rid}\r\n"
                                 "Content-Length: 100\r\nUpgrade: conformance/1\r\nConnection: Upgrade\r\n\r\n"
                                 + "x" * 10),
}
# How MHD may end a connection it times out: in order (over TLS with or
# without a close_notify). Not a reset, and not left open.
CLOSED = ("fin", "close_notify", "fin-without-close_notify")


@pytest.mark.rule("U-TMO-2")
@pytest.mark.parametrize("stall", list(STALLS))
def test_timeout_before_upgrade(make_server, connect, barrier, stall):
    conn = connect(make_server(timeout=TIMEOUT))
    conn.send(STALLS[stall](conn.server.url("/upgrade", then="echo"), conn.rid).encode())  # and then nothing
    limit = 2 * TIMEOUT + scaled(2)  # MHD's timeout (not scaled) plus a scaled margin
    data, end = conn.read_to_end(seconds=limit, scale=False)
    assert end in CLOSED, (
        f"a request stalled {stall} with a {TIMEOUT} s timeout: after {limit:.1f} s the client saw "
        f"{'the connection still open' if end == 'open' else end} (expected it closed in order)")
    assert not data.startswith(b"HTTP/1.1 101"), f"the stalled request was upgraded: {data[:80]!r}"
    barrier(conn.server)
    assert not conn.events("queue") and not conn.events("upgraded"), (
        f"the stalled request reached the point of an upgrade: {conn.events()}")
