"""HALF: shutdown() versus close (rule catalogue, HALF)."""

import pytest

from harness.checks import api_story, expect_101, expect_echo, expect_orderly_end, finish
from harness.client import pattern
from harness.deadlines import scaled

# Scaled: an end of stream crosses loopback in milliseconds.
END_SECONDS = 2
STILL_SENDS = b"client-still-sends"
# What the client sends after the application's shutdown(SHUT_RD): more
# than one TLS record, so that MHD's forwarding tries the socket pair.
REFUSED_BYTES = 65536


def expect_eof_from_server(conn, size, how="SHUT_WR"):
    """The data, then the end (a quiet period of END_SECONDS, scaled, is a
    stall)."""
    expect_orderly_end(conn, pattern(size), f"after the application's shutdown({how})", END_SECONDS, story=False)


@pytest.mark.rule("U-HALF-1")
def test_application_shutdown_reaches_client(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="shutdown", n=64, until=len(STILL_SENDS)))
    expect_101(conn)
    expect_eof_from_server(conn, 64)
    assert conn.wait_event("shutdown")["result"], "shutdown(sock, SHUT_WR) failed in the application"
    # The other direction is still open: the application reads this.
    conn.send(STILL_SENDS)
    conn.wait_event("received", total=len(STILL_SENDS))
    finish(conn)


# How a client ends its sending side: the orderly end of each transport,
# and over TLS the two halves of it alone.
ENDINGS = {
    "fin": dict(close_notify=False, fin=True),
    "close_notify+fin": dict(close_notify=True, fin=True),
    "close_notify-only": dict(close_notify=True, fin=False),
}


def expect_end_reaches_application(conn, ending):
    # The script gives up waiting soon after this case would: a connection
    # whose end never reaches the application does not stay open.
    idle_ms = int(scaled(END_SECONDS) * 1000)
    conn.request(conn.server.url("/upgrade", then="echo", idle=idle_ms))
    expect_101(conn)
    expect_echo(conn, b"before-the-end")
    conn.shutdown_write(**ENDINGS[ending])
    end = conn.wait_event("echo_end", seconds=END_SECONDS + 3)
    assert end["how"] == "eof", (
        f"the client ended its side ({ending}), but the application's recv() on sock did not return 0 "
        f"within {idle_ms} ms (its echo ended: {end['how']}) [{api_story(conn)}]")
    assert end["bytes"] == len(b"before-the-end"), f"the application read {end['bytes']} bytes before EOF"


@pytest.mark.rule("U-HALF-2")
def test_client_end_reaches_application(server, connect, transport):
    conn = connect(server)
    expect_end_reaches_application(conn, "fin" if transport == "plain" else "close_notify+fin")


@pytest.mark.rule("U-HALF-2")
@pytest.mark.tls_only
@pytest.mark.parametrize("ending", ["fin", "close_notify-only"],
                         ids=["fin-without-close_notify", "close_notify-without-fin"])
def test_client_partial_tls_end_reaches_application(server, connect, ending):
    """Over TLS, each half of an orderly end alone: a bare TCP FIN (a
    truncating client) and a close_notify with the TCP stream left open."""
    expect_end_reaches_application(connect(server), ending)


@pytest.mark.rule("U-HALF-3")
def test_shutdown_is_not_close(server, connect):
    chunks = (b"one", b"two-two", b"three-three-three")
    last = b"close-now"  # its arrival makes the application CLOSE
    conn = connect(server)
    conn.request(server.url("/upgrade", then="shutdown", n=0, until=sum(map(len, chunks)) + len(last)))
    expect_101(conn)
    conn.wait_event("shutdown")
    # Whether the client sees that end is U-HALF-1; here: the connection
    # still carries the client's bytes, and MHD keeps it until CLOSE.
    total = 0
    for chunk in chunks:
        conn.send(chunk)
        total += len(chunk)
        conn.wait_event("received", total=total)
        closed = [e for e in conn.events("conn_closed")]
        assert not closed, f"MHD closed the connection after shutdown(), before CLOSE [{api_story(conn)}]"
    conn.send(last)
    assert conn.wait_event("recv_end")["how"] == "until"
    assert conn.wait_event("action", action="close")["result"], "CLOSE after shutdown() returned MHD_NO"
    conn.close()


@pytest.mark.rule("U-HALF-3")
def test_shutdown_read_leaves_other_way_open(server, connect, control):
    """The application shuts sock down for reading; the client then sends
    64 KiB that sock refuses (over HTTPS, MHD's send to the socket pair
    fails with EPIPE, and MHD drops them); the other way must stay open:
    the application's 64 bytes after that reach the client."""
    conn = connect(server)
    conn.request(server.url("/upgrade", then="shutdown-read", n=64, idle=int(scaled(END_SECONDS + 3) * 1000)))
    expect_101(conn)
    shut = conn.wait_event("shutdown")
    assert shut["result"], f"shutdown(sock, SHUT_RD) failed in the application (errno {shut['errno']})"
    conn.send(pattern(REFUSED_BYTES))
    release = server.url("/release", of=conn.rid)
    assert control(server, release) == 200, "the application's script was gone before it sent"
    got = conn.read_exact(64, seconds=END_SECONDS)
    assert got == pattern(64), "after shutdown(sock, SHUT_RD) the application's bytes reached the client changed"
    assert control(server, release) == 200, "the application's script was gone before CLOSE"
    closed = conn.wait_event("action", action="close")
    assert closed["result"], f"CLOSE after shutdown(sock, SHUT_RD) returned MHD_NO [{api_story(conn)}]"


@pytest.mark.rule("U-HALF-4")
def test_shutdown_both_ways_then_close(server, connect, control):
    """The application shuts sock down both ways after 64 bytes: the client
    sees them, then an orderly end; then, told so by the client, the
    application CLOSEs, which must still work and clean up."""
    conn = connect(server)
    conn.request(server.url("/upgrade", then="shutdown-both", n=64, idle=int(scaled(END_SECONDS + 3) * 1000)))
    expect_101(conn)
    expect_eof_from_server(conn, 64, "SHUT_RDWR")
    assert conn.wait_event("shutdown")["result"], "shutdown(sock, SHUT_RDWR) failed in the application"
    assert control(server, server.url("/release", of=conn.rid)) == 200, "the application's script was gone before CLOSE"
    closed = conn.wait_event("action", action="close")
    assert closed["result"], f"CLOSE after shutdown(sock, SHUT_RDWR) returned MHD_NO [{api_story(conn)}]"
    conn.wait_event("conn_closed")
