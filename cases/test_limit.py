"""LIMIT: connection accounting (rule catalogue, LIMIT)."""

import pytest

from harness.checks import ECHO_CHECK, ECHO_ONCE, expect_101, expect_echo, finish
from harness.client import WireError, build_request
from harness.deadlines import Deadline
from harness.streams import Stall

QUIET_SECONDS = 0.5  # scaled: a served request would answer within ms
# MHD calls the CLOSED notify callback before it takes the connection off its
# count (daemon.c, MHD_cleanup_connections and new_connection_close_), and in
# the pool modes another worker answers /stats: the count may lag the event.
SETTLE_SECONDS = 2.0


@pytest.mark.rule("U-LIMIT-1")
def test_upgraded_connection_counts_until_close(private_server, connect):
    srv = private_server(connection_limit=1)
    first = connect(srv)
    # The first connection closes once it echoed two checks: the client
    # sends the second when it wants CLOSE.
    first.request(f"/upgrade?then=echo&until={2 * len(ECHO_CHECK)}")
    expect_101(first)
    expect_echo(first)
    second = connect(srv, handshake=False)
    try:
        # Over TLS the wait starts at the handshake, which MHD does not
        # serve while it is at its limit; over plain HTTP, at the request.
        second.handshake(seconds=QUIET_SECONDS)  # the quiet period is the stimulus: nothing may come
    except Stall:
        waiting_for_handshake = True
    except WireError as e:
        raise AssertionError(f"with a connection limit of 1 and an upgraded connection open, a second "
                             f"client's TLS handshake failed instead of waiting: {e}") from None
    else:
        waiting_for_handshake = False
        second.send(build_request("/hello", second.rid, upgrade=None))
        early, end = second.read_to_end(seconds=QUIET_SECONDS)
        what = f"was answered: {early[:60]!r}" if early else f"saw the connection end ({end})"
        assert (early, end) == (b"", "open"), (
            f"with a connection limit of 1 and an upgraded connection open, a second client {what}; "
            "it should wait")
    expect_echo(first)
    first.wait_event("action", action="close")
    if waiting_for_handshake:
        second.handshake()
        second.send(build_request("/hello", second.rid, upgrade=None))
    head = second.read_head()
    assert head.status == 200 and second.read_body() == b"hello\n", (
        f"after CLOSE the waiting client got {head.status_line()!r}")


def current_connections(connect, srv):
    conn = connect(srv)
    conn.request("/stats", upgrade=None)
    conn.read_head()
    count = conn.wait_event("stats")["connections"]
    conn.close()
    conn.wait_event("conn_closed")
    return count


@pytest.mark.rule("U-LIMIT-2")
def test_connection_count_returns_after_close(private_server, connect):
    srv = private_server()
    before = current_connections(connect, srv)
    conn = connect(srv)
    conn.request(f"/upgrade?{ECHO_ONCE}")
    expect_101(conn)
    expect_echo(conn)
    finish(conn)
    conn.wait_event("conn_closed")
    deadline = Deadline(SETTLE_SECONDS)
    counts = [current_connections(connect, srv)]
    while counts[-1] != before and not deadline.expired():
        counts.append(current_connections(connect, srv))
    assert counts[-1] == before, (
        f"MHD still counts {counts[-1]} connections {deadline.seconds:.1f} s after CLOSE; "
        f"{before} before the upgrade (asked {len(counts)} times: {counts[:8]})")
