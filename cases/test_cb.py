"""CB: the upgrade handler call (rule catalogue, CB)."""

import pytest

from harness.checks import ECHO_ONCE, expect_101, expect_echo, finish
from harness.client import pattern
from harness.deadlines import scaled
from harness.modes import THREAD_PER_CONNECTION

REPLY_SECONDS = 2  # scaled; the client answers within milliseconds of the 101


def upgraded(server, connect):
    conn = connect(server)
    conn.request(f"/upgrade?{ECHO_ONCE}")
    expect_101(conn)
    return conn, conn.wait_event("upgraded")


def echo_and_finish(conn):
    expect_echo(conn)
    finish(conn)


@pytest.mark.rule("U-CB-1")
@pytest.mark.plain_only  # the catalogue: "plain: a handler that waits ..."
def test_handler_runs_after_101_was_sent(server, connect):
    """The handler waits (REPLY_SECONDS, scaled) for the client's answer to
    the 101; the client answers only once the whole 101 head arrived."""
    conn = connect(server)
    conn.request(f"/upgrade?then=wait-in-handler&idle={int(scaled(REPLY_SECONDS) * 1000)}")
    expect_101(conn)
    conn.send(b"answer-to-the-101")
    reply = conn.wait_event("reply_in_handler")
    assert reply["got_reply"] and reply["reply"] == "answer-to-the-101", (
        "the handler, waiting for the client's answer to the 101, did not get it: the 101 was not on the "
        f"wire while the handler ran ({reply})")
    finish(conn)


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
    conn.request(f"/upgrade?then=block-in-handler&until={len(data)}")
    expect_101(conn)
    assert conn.exchange(data, len(data)) == data, "the stream echoed by the blocking handler differs"
    end = conn.wait_event("echo_end")
    assert (end["how"], end["bytes"]) == ("until", len(data)), f"the blocking handler's echo ended: {end}"
    finish(conn)
