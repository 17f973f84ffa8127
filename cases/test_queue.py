"""QUEUE: what MHD_queue_response accepts for an upgrade (rule catalogue, QUEUE)."""

import pytest

from harness.checks import ECHO_ONCE, api_story, connection_tokens, echo_and_finish, expect_101, expect_refused
from harness.client import WireError, build_request
from harness.server import EventTimeout

# How long to watch for HTTP that must not come (scaled): a deviation shows
# within milliseconds on loopback; the quiet outcome costs this much.
QUIET_SECONDS = 0.5


@pytest.mark.rule("U-QUEUE-1")
@pytest.mark.parametrize("status", [200, 426], ids=lambda s: f"status{s}")
def test_upgrade_response_with_other_status_refused(server, connect, status):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", status=status))
    expect_refused(conn)
    assert not conn.events("upgraded"), f"the upgrade handler ran after a {status} response"


@pytest.mark.rule("U-QUEUE-2")
def test_101_on_ordinary_response_ends_http(server, connect):
    """Status 101 on an ordinary response: either refused, or the 101 is the
    last HTTP on that connection (no body, no answer to a further request)."""
    conn = connect(server)
    conn.request("/plain-101")
    head = conn.read_head()
    if head.status != 101:
        return  # refused: no 101 reached the wire
    conn.send(build_request("/hello", conn.rid, upgrade=None))
    after, end = conn.read_to_end(seconds=QUIET_SECONDS)
    assert b"HTTP/" not in after and b"not-an-upgrade" not in after, (
        f"MHD sent '101 Switching Protocols' for an ordinary response, then went on speaking HTTP: "
        f"{after[:300]!r} (connection {end}) [{api_story(conn)}]")
    # With no protocol to switch to, the 101 is the end: a connection still
    # open (more may come) or reset does not show the rule holds.
    assert end in ("fin", "close_notify", "fin-without-close_notify"), (
        f"after '101 Switching Protocols' on an ordinary response the connection was {end} "
        f"(expected it closed in order) [{api_story(conn)}]")


@pytest.mark.rule("U-QUEUE-3")
def test_101_with_icy_flag(server, connect, measure):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", icy=True))
    try:
        status_line = conn.read_head().status_line()
    except WireError:
        # Not HTTP/1.1 (an ICY status line, say): what was sent is the
        # measure, not a failure of this case.
        received = bytes(conn.transcript.received)
        if not received:
            raise
        status_line = received.split(b"\r\n", 1)[0].decode("latin-1")
    queued = conn.wait_event("queue", what="upgrade")
    handler_ran = False
    if queued["result"]:
        try:
            handler_ran = bool(conn.wait_event("upgraded", seconds=2))
        except EventTimeout:
            pass
    measure({"queue_result": queued["result"], "status_line": status_line, "handler_ran": handler_ran})


@pytest.mark.rule("U-QUEUE-4")
def test_upgrade_without_connection_upgrade_token_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, del_conn=True))
    head = conn.read_head()
    deleted = conn.wait_event("del_header")
    queued = conn.wait_event("queue", what="upgrade")
    assert head.status != 101 or connection_tokens(head) == ["upgrade"], (
        f"MHD sent a 101 without 'Connection: upgrade': {head.raw!r}")
    if deleted["result"]:
        # The token is really gone from the response: queueing it must fail.
        assert head.status != 101, (
            f"MHD_del_response_header removed 'Connection: Upgrade', yet the response was sent as "
            f"{head.status_line()!r} [{api_story(conn)}]")
        assert not queued["result"], f"queue returned YES [{api_story(conn)}]"
    else:
        # MHD would not let the token go: no application can make such a
        # response, so the rule cannot be put to the test here; say so.
        pytest.skip(f"MHD_del_response_header(Connection: Upgrade) returned MHD_NO: the upgrade token cannot "
                    f"be removed, so there is no such response to refuse [{api_story(conn)}]")


@pytest.mark.rule("U-QUEUE-5")
def test_upgrade_for_http10_request_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"), version="HTTP/1.0")
    expect_refused(conn)
    assert not conn.events("upgraded"), "the upgrade handler ran for an HTTP/1.0 request"


@pytest.mark.rule("U-QUEUE-6")
def test_upgrade_with_http10_reply_flags_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", rf="http10"))
    expect_refused(conn)
    assert not conn.events("upgraded"), "the upgrade handler ran for a response in HTTP/1.0 reply mode"


# Requests whose body length cannot be determined (RFC 9112 section 6.3):
# a server must answer them and close, never switch protocols.
AMBIGUOUS = {
    "length-and-chunked": [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    "two-lengths": [("Content-Length", "5"), ("Content-Length", "6")],
    "chunked-not-last": [("Transfer-Encoding", "chunked, gzip")],
    "unknown-coding": [("Transfer-Encoding", "gzip")],
    "bad-length": [("Content-Length", "5x")],
}


@pytest.mark.rule("U-QUEUE-7")
@pytest.mark.parametrize("framing", list(AMBIGUOUS))
def test_ambiguous_framing_never_upgraded(server, connect, barrier, framing):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"), method="POST", headers=AMBIGUOUS[framing], eager=b"0\r\n\r\n")
    try:
        head = conn.read_head(seconds=QUIET_SECONDS)
    except WireError:
        # No answer (MHD may wait for a body it cannot frame): no protocol
        # switch either; the handler must not have run.
        barrier(conn.server)
        assert not conn.events("upgraded"), f"the upgrade handler ran for {framing} [{api_story(conn)}]"
        return
    assert head.status != 101, (
        f"a request with ambiguous framing ({framing}) was switched to another protocol [{api_story(conn)}]")
    tokens = connection_tokens(head)
    assert not ("upgrade" in tokens and "close" in tokens), f"contradictory Connection header: {tokens}"
    barrier(conn.server)
    assert not conn.events("upgraded"), (
        f"a request with ambiguous framing ({framing}) got {head.status_line()!r}, yet the upgrade handler ran "
        f"[{api_story(conn)}]")


@pytest.mark.rule("U-QUEUE-8")
def test_second_response_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, twice=True))
    expect_101(conn)
    second = conn.wait_event("queue", what="second")
    assert not second["result"], "a second MHD_queue_response for the same request returned MHD_YES"
    conn.wait_event("upgraded")
    echo_and_finish(conn)


@pytest.mark.rule("U-QUEUE-8")
def test_queue_from_other_thread_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", thread=True))
    head = conn.read_head()
    queued = conn.wait_event("queue", what="upgrade-other-thread")
    assert queued["pthread_error"] == 0, "the server could not start its second thread"
    assert not queued["result"] and head.status != 101, (
        f"MHD_queue_response from a thread other than the connection's returned MHD_YES; "
        f"wire: {head.status_line()!r}")


@pytest.mark.rule("U-QUEUE-9")
# Where the stop shows on the connection's thread: MHD shuts the
# connection's socket down (thread per connection) or the listening socket
# (a pool). With one internal thread the access handler holding it keeps
# MHD_stop_daemon from getting anywhere; in the external loops the thread
# that would queue is the one in MHD_stop_daemon.
@pytest.mark.modes("M-TPC", "M-TPC-POLL", "M-POOL", "M-POOL-SELECT", "M-POOL-POLL")
def test_upgrade_queued_during_stop_refused(private_server, connect):
    srv = private_server()
    conn = connect(srv)
    conn.request(srv.url("/upgrade", then="close", at_stop=True))
    conn.wait_event("held_for_stop")
    srv.begin_stop()  # SIGTERM: MHD_stop_daemon, while the access handler holds the request
    seen = conn.wait_event("stop_seen")
    assert seen["seen"], f"the access handler did not see the daemon's stop begin: {seen}"
    queued = conn.wait_event("queue", what="upgrade")
    data, end = conn.read_to_end()
    assert not queued["result"], (
        f"MHD_queue_response of an upgrade while MHD_stop_daemon ran returned MHD_YES ({seen}); "
        f"the client got {data[:80]!r} [{api_story(conn)}]")
    assert not data.startswith(b"HTTP/1.1 101"), f"a 101 went out while the daemon stopped: {data[:80]!r}"
    srv.stop()
    assert not [e for e in srv.events(conn.rid) if e["ev"] == "upgraded"], "the upgrade handler ran during the stop"
