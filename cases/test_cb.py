"""CB: the upgrade handler call (rule catalogue, CB)."""

import pytest

from harness.checks import ECHO_ONCE, echo_and_finish, expect_101, finish
from harness.client import pattern
from harness.deadlines import scaled
from harness.modes import THREAD_PER_CONNECTION
from harness.streams import QUIET_SECONDS

# Scaled: how long the handler waits for the client's answer to the 101.
# Longer than the client's own wait for the 101 (a quiet period), so that an
# MHD that holds the 101 back until the handler returns fails on the
# client's side, as what it saw ("no byte for 5 s"), and a slow or busy
# machine, whose client answers late, is not taken for one. (It was 2 s: a
# loaded CI runner's client answered after the handler had given up.)
HANDLER_WAIT_SECONDS = 3 * QUIET_SECONDS


def upgraded(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE))
    expect_101(conn)
    return conn, conn.wait_event("upgraded")


@pytest.mark.rule("U-CB-1")
@pytest.mark.plain_only  # the catalogue: "plain: a handler that waits ..."
def test_handler_runs_after_101_was_sent(server, connect):
    """The handler waits (HANDLER_WAIT_SECONDS, scaled) for the client's
    answer to the 101; the client answers only once the whole 101 head
    arrived, which it must while the handler still waits."""
    wait = scaled(HANDLER_WAIT_SECONDS)
    conn = connect(server)
    conn.request(server.url("/upgrade", then="wait-in-handler", idle=int(wait * 1000)))
    expect_101(conn)
    conn.send(b"answer-to-the-101")
    reply = conn.wait_event("reply_in_handler", seconds=HANDLER_WAIT_SECONDS + QUIET_SECONDS)
    assert reply["got_reply"] and reply["reply"] == "answer-to-the-101", (
        f"the client had the whole 101 and answered it; the handler, waiting up to {wait:.0f} s for that "
        f"answer, did not get it ({reply})")
    finish(conn)


# A 101 larger than one TLS record (16 KiB) and than the socket buffers
# on the way: MHD sends it in many pieces and may call the handler only
# after the last. An MHD that counted the head as sent after its first
# send would hand over the connection with the rest never sent. The pool
# must hold the head (MHD builds it there).
LARGE_HEAD = 200_000
LARGE_HEAD_POOL = 1 << 20


@pytest.mark.rule("U-CB-1")
def test_large_101_arrives_whole(make_server, connect):
    conn = connect(make_server(memory_limit=LARGE_HEAD_POOL))
    conn.request(conn.server.url("/upgrade", **ECHO_ONCE, pad=LARGE_HEAD))
    head = expect_101(conn)
    pad = conn.wait_event("pad_headers")
    assert pad["refused"] == 0, f"MHD_add_response_header refused {pad['refused']} of the padding headers"
    got = {k: v for k, v in head.headers if k.startswith("x-pad-")}
    lines = sum(len(k) + len(v) + 4 for k, v in got.items())
    assert (len(got), lines) == (pad["headers"], pad["bytes"]), (
        f"the 101 carried {len(got)} padding headers ({lines} bytes); the application added "
        f"{pad['headers']} ({pad['bytes']} bytes); the head was {len(head.raw)} bytes")
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-2")
def test_handler_cls(server, connect):
    conn, call = upgraded(server, connect)
    assert call["cls_ok"], "the handler's cls is not the value given to MHD_create_response_for_upgrade"
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-3")
def test_handler_req_cls(server, connect):
    conn, call = upgraded(server, connect)
    assert call["req_cls_ok"], "the handler's req_cls is not what the access handler left in *req_cls"
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-4")
def test_handler_connection_identifies_the_client(server, connect):
    conn, _ = upgraded(server, connect)
    seen = conn.wait_event("handler_connection")
    assert (seen["peer_port"], seen["rid_header"]) == (conn.local_port, conn.rid), (
        f"inside the handler the connection handle gave client port {seen['peer_port']} and request header "
        f"{seen['rid_header']!r}; the client is port {conn.local_port} and sent {conn.rid!r}")
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-5")
def test_handler_thread(server, connect, measure):
    conn, call = upgraded(server, connect)
    measure({"same_thread_as_access_handler": call["same_thread_as_access_handler"]})
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-6")
@pytest.mark.modes(*THREAD_PER_CONNECTION)
def test_data_flows_while_handler_blocks(server, connect):
    """Thread per connection: the handler itself echoes 1 MiB, blocking MHD's
    thread for that connection; it must flow both ways meanwhile."""
    data = pattern(1 << 20)
    conn = connect(server)
    conn.request(server.url("/upgrade", then="block-in-handler", until=len(data)))
    expect_101(conn)
    assert conn.exchange(data, len(data)) == data, "the stream echoed by the blocking handler differs"
    end = conn.wait_event("echo_end")
    assert (end["how"], end["bytes"]) == ("until", len(data)), f"the blocking handler's echo ended: {end}"
    finish(conn)


# Requests whose head MHD must keep intact until the handler has run, also
# when its buffer is small (U-CB-7): MHD's buffer reclaiming once overwrote
# the request line. Keys starting with x- are free for the server. The
# query tails are written by hand on purpose, to test MHD's parsing: an
# argument without "=", a long URL.
def many_headers(n):
    return [(f"X-Extra-{i:02d}", f"value-{i:02d}-" + "v" * 20) for i in range(n)]


VIEWS = {
    "plain": dict(query="", headers=[]),
    "argument-without-value": dict(query="&x-flag&x-empty=", headers=[]),
    "long-url": dict(query="&x-long=" + "L" * 600, headers=[]),
    "many-headers": dict(query="", headers=many_headers(12)),
}
VIEW_LIMITS = {"mem-1k": 1024, "mem-4k": 4096, "mem-default": None}


@pytest.mark.rule("U-CB-7")
@pytest.mark.parametrize("memory", list(VIEW_LIMITS))
@pytest.mark.parametrize("view", list(VIEWS))
def test_request_intact_inside_handler(make_server, connect, memory, view):
    conn = connect(make_server(memory_limit=VIEW_LIMITS[memory]))
    shape = VIEWS[view]
    conn.request(conn.server.url("/upgrade", **ECHO_ONCE) + shape["query"], headers=shape["headers"])
    head = conn.read_head()
    if head.status in (413, 414, 431) and VIEW_LIMITS[memory]:
        pytest.skip(f"MHD refused the {view} request with a {memory} pool ({head.status_line()!r}): "
                    "no handler to look inside")
    assert head.status == 101, f"expected '101 Switching Protocols', got {head.status_line()!r}"
    seen = conn.wait_event("handler_view")
    assert (seen["url_intact"], seen["headers_intact"], seen["args_intact"]) == (True, True, True), (
        f"inside the handler the request read otherwise than the access handler saw it: {seen}")
    echo_and_finish(conn)


@pytest.mark.rule("U-CB-1")
@pytest.mark.tls_only
@pytest.mark.modes(*THREAD_PER_CONNECTION)
def test_handler_runs_after_101_was_sent_over_tls(server, connect, control):
    """Over TLS the client's answer would have to pass MHD's forwarding,
    which the waiting handler holds up; the answer comes on a connection
    of its own instead (GET /release?of=RID), once the whole 101 arrived:
    a handler that gets it ran after the 101 was on the wire."""
    conn = connect(server)
    wait = scaled(HANDLER_WAIT_SECONDS)
    conn.request(server.url("/upgrade", then="wait-release-in-handler", idle=int(wait * 1000)))
    expect_101(conn)
    assert control(server, server.url("/release", of=conn.rid)) == 200, "the handler's wait was gone"
    reply = conn.wait_event("reply_in_handler", seconds=HANDLER_WAIT_SECONDS + QUIET_SECONDS)
    assert reply["got_reply"], (
        f"the client had the whole 101 and answered it (/release); the handler, waiting up to {wait:.0f} s "
        f"for that answer, did not get it ({reply})")
    finish(conn)
