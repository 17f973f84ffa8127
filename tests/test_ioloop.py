"""The one selector loop (harness/ioloop.py) on socket pairs, and the
connection's exchange that runs on it against a thread that echoes."""

import selectors
import socket
import threading

import pytest

from harness import ioloop
from harness.client import THROUGH_MHD, Conn, pattern
from harness.streams import Loss

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_the_verdict_comes_after_a_look_at_the_socket(pair):
    """Bytes that came before the loop ran are seen before the verdict,
    even with no time left."""
    a, b = pair
    b.sendall(b"x")
    got, judged = bytearray(), []

    def judge():
        judged.append(bytes(got))
        assert got, "the verdict came before a look at the socket"
    ioloop.run(lambda: [(a, READ)], lambda f, mask: got.extend(f.recv(16)), lambda: bool(got), lambda: 0, judge)
    assert judged == [b"x"]


def test_both_ways_at_once_and_write_watched_only_while_there_is_something_to_send(pair):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = pattern(1 << 20)
    left = [memoryview(data)]
    got = bytearray()
    watched_masks = []

    def watched():
        mask = READ | (WRITE if left[0] else 0)
        watched_masks.append(mask)
        return [(a, mask), (b, READ)]

    def ready(f, mask):
        assert f is b or mask & WRITE and left[0], "a was ready for writing with nothing to send"
        if f is a:
            left[0] = left[0][a.send(left[0][:65536]):]
        else:
            got.extend(b.recv(262144))
    ioloop.run(watched, ready, lambda: len(got) == len(data), lambda: 1.0)
    assert got == data
    assert watched_masks[0] == READ | WRITE and watched_masks[-1] == READ


def test_a_file_left_out_or_with_mask_0_is_not_watched(pair):
    a, b = pair
    b.sendall(b"waiting")
    rounds, seen = [], []
    masks = [[(a, 0)], [], [(a, READ)]]

    def watched():
        rounds.append(len(rounds))
        return masks[len(rounds) - 1]
    ioloop.run(watched, lambda f, mask: seen.append(len(rounds)), lambda: len(rounds) == 3, lambda: 0)
    assert seen == [3]


class Echo:
    """A one-connection TCP server that echoes `keep` bytes, then sends
    `extra` and ends with a FIN."""

    def __init__(self, keep, extra=b""):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.keep, self.extra = keep, extra
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        echoed = 0
        while echoed < self.keep:
            data = conn.recv(min(65536, self.keep - echoed))
            if not data:
                break
            conn.sendall(data)
            echoed += len(data)
        conn.sendall(self.extra)
        conn.close()
        self.listener.close()

    def events(self, rid=None):
        return []


def test_exchange_sends_while_it_reads_and_keeps_what_came_beyond():
    data = pattern(4 << 20)
    srv = Echo(len(data), extra=b"MORE")
    conn = Conn(srv, "r1", sockbuf=16384)
    assert conn.exchange(data, len(data)) == data
    assert conn.read_exact(4) == b"MORE"
    assert bytes(conn.transcript.received) == data + b"MORE"
    srv.thread.join(5)
    conn.close()


def test_exchange_tells_an_early_end():
    srv = Echo(10)
    conn = Conn(srv, "r1")
    with pytest.raises(Loss) as e:
        conn.exchange(b"x" * 10, 20)
    assert str(e.value).startswith(f"{THROUGH_MHD}the stream ended (fin) after 10 of 20 bytes received, "
                                   "with 0 bytes (on the wire) still to send\n")
    assert conn.end == "fin"
    srv.thread.join(5)
    conn.close()
