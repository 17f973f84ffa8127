"""REQ: the request being upgraded (rule catalogue, REQ)."""

import pytest

from harness.checks import SENTINEL, api_story, expect_101, finish
from harness.client import build_request, pattern
from harness.streams import check_bytes
from harness.deadlines import scaled
from harness.server import EventTimeout
from harness.transfer import sha256

# Scaled: how long the echo waits for bytes that MHD may have lost.
LOST_SECONDS = 2

VARIANTS = {
    "upgrade-and-connection": dict(),
    "no-upgrade-headers": dict(upgrade=None),
    "upgrade-without-connection": dict(upgrade=None, headers=[("Upgrade", "conformance/1")]),
    "connection-close": dict(upgrade=None, headers=[("Upgrade", "conformance/1"), ("Connection", "close")]),
    "head": dict(method="HEAD"),
}


def outcome(conn, head, barrier):
    """What happened to one request: the status on the wire, what queue
    returned (None: the application was never asked), whether the handler
    ran."""
    if head.status == 101:
        queued = conn.wait_event("queue")
    else:
        barrier(conn.server)  # MHD may have answered without the application
        queued = next(iter(conn.events("queue")), {"result": None})
    ran = False
    if queued["result"] and head.status == 101:
        try:
            ran = bool(conn.wait_event("upgraded", seconds=2))
        except EventTimeout:
            pass
    return {"status": head.status, "queue_result": queued["result"], "handler_ran": ran}


@pytest.mark.rule("U-REQ-1")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_request_shapes_upgraded(server, connect, barrier, measure, variant):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"), **VARIANTS[variant])
    head = conn.read_head()
    measure(outcome(conn, head, barrier))


@pytest.mark.rule("U-REQ-2")
def test_request_without_host(server, connect, barrier, measure):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"), host=False)
    head = conn.read_head()
    measure(outcome(conn, head, barrier))


def chunked(body, size=300):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


FRAMINGS = {
    "content-length": lambda body: ([("Content-Length", str(len(body)))], body),
    "chunked": lambda body: ([("Transfer-Encoding", "chunked")], chunked(body)),
}


@pytest.mark.rule("U-REQ-3")
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_upgrade_before_body_loses_nothing(server, connect, framing):
    """Upgrade queued before MHD read the body: every byte sent after the
    request head reaches the application once, in order: through the access
    handler (decoded body), then extra_in and the socket; then the sentinel
    the client sends after the 101, and nothing twice before it."""
    body = pattern(1000)
    headers, wire = FRAMINGS[framing](body)
    conn = connect(server)
    # The echo closes after every byte sent behind the head and the
    # sentinel, or gives up waiting for bytes MHD lost.
    idle_ms = int(scaled(LOST_SECONDS) * 1000)
    conn.request(server.url("/upgrade", then="echo", at="headers", until=len(wire) + len(SENTINEL), idle=idle_ms),
                 method="POST", headers=headers, eager=wire)
    expect_101(conn)
    conn.send(SENTINEL)
    seen = conn.wait_event("body")
    conn.wait_event("upgraded")
    eof = conn.wait_event("echo_end", seconds=LOST_SECONDS + 3)
    streamed = conn.read_exact(eof["bytes"])
    assert seen["bytes"] == 0 or framing == "content-length", (
        f"the access handler was given {seen['bytes']} decoded body bytes although the upgrade was queued "
        "at the headers")
    rest = wire[seen["bytes"]:] if framing == "content-length" else wire
    if seen["bytes"]:
        assert seen["sha256"] == sha256(wire[:seen["bytes"]]), "the access handler's body is not the bytes sent"
    check_bytes(streamed, rest + SENTINEL, f"echo {eof['how']!r}" if eof["how"] != "until" else None,
                f"the {len(wire)} bytes sent after the request head, then the sentinel, as extra_in + socket",
                context=f"the access handler got {seen['bytes']} of them [{api_story(conn)}]")
    finish(conn)


@pytest.mark.rule("U-REQ-4")
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_upgrade_after_body(server, connect, framing):
    body, after = pattern(1000), b"bytes-after-the-body"
    headers, wire = FRAMINGS[framing](body)
    conn = connect(server)
    conn.request(server.url("/upgrade", then="echo", until=len(after) + len(SENTINEL)), method="POST", headers=headers,
                 eager=wire + after)
    expect_101(conn)
    seen = conn.wait_event("body")
    assert (seen["bytes"], seen["sha256"]) == (len(body), sha256(body)), (
        f"the access handler got {seen['bytes']} body bytes, expected the {len(body)} sent")
    call = conn.wait_event("upgraded")
    assert call["extra_in_size"] <= len(after)
    echoed = conn.exchange(SENTINEL, len(after) + len(SENTINEL))
    assert echoed == after + SENTINEL, (
        f"extra_in + socket gave {echoed!r}, expected only what followed the body, then the sentinel")
    finish(conn)


@pytest.mark.rule("U-REQ-5")
@pytest.mark.parametrize("at", ["body", "headers"])
def test_expect_100_continue(server, connect, measure, at):
    """What reaches the client before the 101 when it asks Expect: 100-continue
    and waits: the upgrade queued once the body is in, or at the headers."""
    body = b"x" * 10
    conn = connect(server)
    conn.send(build_request(server.url("/upgrade", then="close", at=at), conn.rid, method="POST",
                            headers=[("Content-Length", "10"), ("Expect", "100-continue")]))
    first = conn.read_raw_head()
    heads = [first.split(b"\r\n", 1)[0].decode("latin-1")]
    if b" 100 " in heads[0].encode():
        conn.send(body)
        heads.append(conn.read_raw_head().split(b"\r\n", 1)[0].decode("latin-1"))
    measure(heads)


HOSTS = {"no-host": dict(host=False), "two-hosts": dict(headers=[("Host", "other.example")])}


@pytest.mark.rule("U-REQ-6")
@pytest.mark.parametrize("hosts", list(HOSTS))
def test_upgrade_request_without_one_host_is_400(server, connect, barrier, hosts):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"), **HOSTS[hosts])
    head = conn.read_head()
    barrier(conn.server)
    reached = [e["ev"] for e in conn.events() if e["ev"] in ("request", "upgraded")]
    assert (head.status, reached) == (400, []), (
        f"an HTTP/1.1 upgrade request with {hosts.replace('-', ' ')} got {head.status_line()!r}; the handlers "
        f"saw it: {reached or 'no'} (RFC 9112: 400, and no handler) [{api_story(conn)}]")
