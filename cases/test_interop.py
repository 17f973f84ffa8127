"""WS-6: the reference server's WebSocket endpoint on MHD's upgrade with the
clients people use (harness/interop): Chromium, Node's ws, aiohttp, wsproto
and websockets, each with its own defaults. The same scenarios for every
client; a scenario a client cannot express (a browser cannot ping) is not
generated for it. Each case checks what the client saw and what the server
saw (its events: the handshake, extra_in, how the connection ended).

Only with --interop: see README.md, "Real clients"."""

import pytest

from harness.client import pattern
from harness.interop import whose
from harness.interop.clients import NAMES, with_feature
from harness.streams import check_bytes
from harness.transfer import volume

pytestmark = pytest.mark.interop

# Offered in this order; the server speaks the second (servers/websocket.c).
PROTOCOLS = ("v0.unknown.example", "chat.conformance")
# Around the 7-bit and 16-bit length forms, and past a 64 KiB buffer.
SIZES = (0, 125, 126, 65536)
# U-WS-3's 1 MiB (times --volume), both ways: the 64-bit length form
# through every buffer on the path, as each client sends and reads it.
LARGE = 1 << 20
CLOSE_CODE = 4001  # a code an application may choose (RFC 6455 section 7.4.2); browsers allow 3000-4999


def clients_that(feature):
    return pytest.mark.parametrize("client", with_feature(feature))


every_client = pytest.mark.parametrize("client", NAMES)


def closed_cleanly(session, messages, code=1000):
    """The client's closing handshake, then what the server saw: every
    message echoed and the closing handshake, in that order."""
    got, _ = session.close(code, "done")
    assert got == code, f"the client closed with {code}; the server's close frame said {got}"
    end = session.wait_event("ws_end")
    assert (end["how"], end["messages"]) == ("closed", messages), (
        f"the server saw {end['messages']} messages and the end as {end['how']!r}; the client sent {messages} "
        f"and closed with {code}: {end}")
    return end


@pytest.mark.rule("U-WS-6")
@every_client
def test_handshake_with_subprotocol(server, interop, client):
    session = interop(server, client)
    with whose.fault(session):
        chosen = session.open(PROTOCOLS)
        assert chosen == "chat.conformance", (
            f"the client offered {', '.join(PROTOCOLS)}; it saw the server choose {chosen!r}")
        seen = session.wait_event("ws_handshake")
        assert (seen["wrong"], seen["protocol"]) == (None, "chat.conformance"), f"the server saw {seen}"
        session.send("hello")
        assert session.recv() == "hello"
        closed_cleanly(session, 1)


@pytest.mark.rule("U-WS-6")
@every_client
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_messages_are_echoed(server, interop, client, kind):
    messages = [("".join(chr(0x61 + i % 26) for i in range(n)) if kind == "text" else pattern(n, n)) for n in SIZES]
    session = interop(server, client)
    with whose.fault(session):
        session.open()
        for sent in messages:
            session.send(sent)
            back = session.recv()
            assert type(back) is type(sent), f"a {len(sent)}-byte {kind} message came back as {type(back).__name__}"
            assert back == sent, f"a {len(sent)}-byte {kind} message came back as {len(back)} other units"
        closed_cleanly(session, len(messages))


@pytest.mark.rule("U-WS-6")
@clients_that("fragments")
def test_fragmented_message_is_echoed_whole(server, interop, client):
    parts = [pattern(3), pattern(70000, 3), pattern(1, 7)]
    session = interop(server, client)
    with whose.fault(session):
        session.open()
        session.send_fragments(parts)
        back = session.recv()
        check_bytes(back, b"".join(parts), what=f"a message sent in {len(parts)} frames, echoed")
        closed_cleanly(session, 1)


@pytest.mark.rule("U-WS-6")
@clients_that("pings")
def test_ping_is_answered_with_pong(server, interop, client):
    session = interop(server, client)
    with whose.fault(session):
        session.open()
        assert session.ping(b"are you there") == b"are you there"
        session.wait_event("ws_control", opcode=9)
        closed_cleanly(session, 0)


@pytest.mark.rule("U-WS-6")
@every_client
def test_large_message_both_ways(server, interop, client):
    data = pattern(LARGE * volume())
    session = interop(server, client)
    with whose.fault(session):
        session.open()
        session.send(data)
        check_bytes(session.recv(), data, what=f"a {len(data)}-byte message, echoed")
        assert closed_cleanly(session, 1)["bytes"] == len(data)


@pytest.mark.rule("U-WS-6")
@every_client
def test_closing_handshake_with_a_status_code(server, interop, client):
    session = interop(server, client)
    with whose.fault(session):
        session.open()
        closed_cleanly(session, 0, code=CLOSE_CODE)
        seen = session.wait_event("ws_control", opcode=8)
        assert seen.get("status_code") == CLOSE_CODE, f"the server read the client's close frame as {seen}"


@pytest.mark.rule("U-WS-6")
@clients_that("early")
def test_first_frame_in_the_handshake_write(server, interop, client):
    session = interop(server, client)
    with whose.fault(session):
        session.open(first="first frame")
        upgraded = session.wait_event("upgraded")
        assert upgraded["extra_in_size"] > 0, (
            "the client sent its first frame in the handshake's write; none of it reached the application in "
            "extra_in")
        assert session.recv() == "first frame"
        closed_cleanly(session, 1)
