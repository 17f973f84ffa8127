"""The HTTP client against canned server bytes: h11 parsing, the upgraded
stream, and how a connection ends."""

import socket
import struct
import threading

import pytest

from harness.client import Conn, WireError


class Canned:
    """A one-connection TCP server that sends `reply` once the request has
    arrived, then ends as told: 'fin', 'rst' or 'open'."""

    def __init__(self, reply, end="fin"):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.reply, self.end = reply, end
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.listener.accept()
        conn.recv(65536)
        conn.sendall(self.reply)
        if self.end == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif self.end == "fin":
            conn.close()
        else:
            self.done.wait(10)
            conn.close()
        self.listener.close()

    def events(self, rid=None):
        return []


@pytest.fixture
def canned():
    servers = []

    def make(reply, end="fin"):
        srv = Canned(reply, end)
        servers.append(srv)
        return srv
    yield make
    for srv in servers:
        srv.done.set()


def test_101_head_and_trailing_bytes(canned):
    srv = canned(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nAFTER")
    conn = Conn(srv, "r1")
    conn.request("/upgrade")
    head = conn.read_head()
    assert (head.status, head.get_all("connection")) == (101, ["Upgrade"])
    assert head.raw.endswith(b"Upgrade: x\r\n\r\n") and head.raw.startswith(b"HTTP/1.1 101")
    assert conn.read_to_end() == (b"AFTER", "fin")


def test_skips_100_continue(canned):
    srv = canned(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    conn = Conn(srv, "r1")
    conn.request("/upgrade")
    head = conn.read_head()
    assert head.status == 101 and head.raw.startswith(b"HTTP/1.1 101")


def test_malformed_response_is_a_wire_error(canned):
    srv = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx")
    conn = Conn(srv, "r1")
    conn.request("/x")
    with pytest.raises(WireError):
        conn.read_head()


def test_body_of_ordinary_response(canned):
    srv = canned(b"HTTP/1.1 500 Internal Server Error\r\nX-Refused: 1\r\nContent-Length: 8\r\n\r\nrefused\n")
    conn = Conn(srv, "r1")
    conn.request("/x")
    head = conn.read_head()
    assert head.get("x-refused") == "1" and conn.read_body() == b"refused\n"


@pytest.mark.parametrize("end", ["fin", "rst", "open"])
def test_how_the_connection_ended(canned, end, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_TIMEOUT_FACTOR", "0.1")
    srv = canned(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\ndata", end)
    conn = Conn(srv, "r1")
    conn.request("/upgrade")
    conn.read_head()
    data, how = conn.read_to_end(seconds=2)
    assert how == end
    assert data in (b"data", b"")  # a reset may discard what was in flight
