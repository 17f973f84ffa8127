"""HALF: shutdown() versus close (rule catalogue, HALF)."""

import pytest

from harness.checks import api_story, expect_101, expect_echo
from harness.client import pattern


def expect_eof_from_server(conn, size):
    data, end = conn.read_to_end()
    assert end == conn.clean_end, (
        f"after the application's shutdown(SHUT_WR) the client saw {end!r}, not end-of-stream ({conn.clean_end})")
    assert data == pattern(size), f"received {len(data)} bytes before end-of-stream, expected {size}"


@pytest.mark.rule("U-HALF-1")
def test_application_shutdown_reaches_client(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=shutdown&n=64")
    expect_101(conn)
    expect_eof_from_server(conn, 64)
    assert conn.wait_event("shutdown")["result"], "shutdown(sock, SHUT_WR) failed in the application"
    # The other direction is still open: the application reads this.
    conn.send(b"client-still-sends")
    conn.wait_event("received", total=len(b"client-still-sends"))
    conn.shutdown_write()
    eof = conn.wait_event("peer_eof")
    assert eof["bytes"] == len(b"client-still-sends")


@pytest.mark.rule("U-HALF-2")
def test_client_fin_reaches_application(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=echo")
    expect_101(conn)
    expect_echo(conn, b"before-fin")
    conn.shutdown_write()
    eof = conn.wait_event("peer_eof")
    assert eof["bytes"] == len(b"before-fin"), f"the application read {eof['bytes']} bytes before EOF"


@pytest.mark.rule("U-HALF-3")
def test_shutdown_is_not_close(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=shutdown&n=0")
    expect_101(conn)
    conn.wait_event("shutdown")
    expect_eof_from_server(conn, 0)
    total = 0
    for chunk in (b"one", b"two-two", b"three-three-three"):
        conn.send(chunk)
        total += len(chunk)
        conn.wait_event("received", total=total)
        closed = [e for e in conn.events("conn_closed")]
        assert not closed, f"MHD closed the connection after shutdown(), before CLOSE [{api_story(conn)}]"
    conn.shutdown_write()
    conn.wait_event("peer_eof", bytes=total)
    assert conn.wait_event("action", action="close")["result"], "CLOSE after shutdown() returned MHD_NO"
