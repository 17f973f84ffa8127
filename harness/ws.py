"""WebSocket on the client side: the Debian-packaged `websockets` library
(asyncio API of version 10) for everything a real client does, and its
frame codec over the suite's raw Conn for what a polite client never sends
(unmasked frames, reserved bits, a handshake and a frame in one write).
No framing is written here."""

import asyncio
import base64
import fcntl
import hashlib
import os
import socket
import struct
import termios

import websockets
from websockets.frames import Close, Frame, Opcode

from .client import READ_SECONDS, RID_HEADER, Tagged
from .deadlines import Deadline
from .streams import Progress, waited
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def uri(srv, path="/ws"):
    scheme = "wss" if srv.transport == "https" else "ws"
    # localhost: the name the test certificate is issued for.
    host = "localhost" if srv.transport == "https" else "127.0.0.1"
    return f"{scheme}://{host}:{srv.port}{path}"


# The TCP connections of the client coroutine run() is running: their
# kernel byte counters are its progress (what websockets itself does
# inside is not ours to instrument).
_sockets = []
_TCP_INFO_ACKED = 120  # struct tcp_info: tcpi_bytes_acked (u64), then tcpi_bytes_received
_TCP_ESTABLISHED = 1  # struct tcp_info: tcpi_state, its first byte
POLL_SECONDS = 0.05  # how often run() samples the counters (a sampling period, not a wait for an event)


class _CountedProtocol(websockets.WebSocketClientProtocol):
    """websockets' client protocol, its TCP socket registered for run()."""

    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _sockets.append(sock)
        super().connection_made(transport)


def _moved():
    """(bytes moved so far on the run's TCP connections, both ways: acked
    by the peer, and received, by the kernel's count; whether the client
    waits on the server). The client does not wait when no connection is
    still established both ways (it is closing on its own timers, bounded
    by close_timeout) or when one holds bytes it has not read yet (the
    client itself is behind: a loaded machine)."""
    total, waiting, behind = 0, False, False
    for sock in _sockets:
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            continue  # closed: what it moved was counted while it was open
        if len(info) >= _TCP_INFO_ACKED + 16:
            acked, received = struct.unpack_from("=QQ", info, _TCP_INFO_ACKED)
            total += acked + received
        waiting = waiting or info[0] == _TCP_ESTABLISHED
        behind = behind or unread > 0
    return total, waiting and not behind


def run(coro, seconds=READ_SECONDS):
    """Runs one client coroutine to its end, judged by progress: it ends as
    a stall when no byte moved on its connections for `seconds` (scaled),
    as slow when still moving at the cap (harness/streams.py)."""
    progress = Progress(seconds)
    _sockets.clear()

    async def watch(task):
        seen = high = 0
        while not task.done():
            # Counters of a closed socket are gone: the highest total seen
            # is what moved.
            now, waiting = _moved()
            if now != seen or not waiting:
                seen, high = now, max(high, now)
                progress.moved()
            if progress.expired():
                task.cancel()
                return high
            await asyncio.sleep(POLL_SECONDS)
        return high

    async def bounded():
        task = asyncio.ensure_future(coro)
        watcher = asyncio.ensure_future(watch(task))
        try:
            return await task
        except asyncio.CancelledError:
            raise waited(progress, await watcher, what="bytes moved", where="the WebSocket exchange: ") from None
        except websockets.exceptions.WebSocketException as e:
            # What the independent client found wrong (a bad accept key, a
            # connection closed without a close frame, ...) is the finding.
            raise AssertionError(f"the websockets client: {type(e).__name__}: {e}") from None
        finally:
            watcher.cancel()
    try:
        return asyncio.run(bounded())
    finally:
        _sockets.clear()


# After the closing handshake the client waits this long (scaled) for the
# server to end the TCP connection, then ends it itself. Whether MHD ends it
# after CLOSE is U-ACT-1's question; the WS cases must not wait on it.
CLOSE_SECONDS = 1


def connect(srv, rid, tls_context=None, path="/ws"):
    """websockets.connect() to the reference server, tagged with `rid`.
    No compression (the server offers none), no keepalive pings (they
    would interleave with what a case sends), no size limit."""
    return websockets.connect(
        uri(srv, path), ssl=tls_context, extra_headers={RID_HEADER: rid}, compression=None,
        create_protocol=_CountedProtocol,
        max_size=None, ping_interval=None, open_timeout=Deadline(READ_SECONDS).seconds,
        close_timeout=Deadline(CLOSE_SECONDS).seconds)


class Session(Tagged):
    """One WebSocket client connection's identity: the server, the request
    id it sends, and the test CA for wss://. connect() opens it."""

    def __init__(self, server, rid, tls_context=None):
        self.server = server
        self.rid = rid
        self.tls_context = tls_context

    def connect(self, path="/ws"):
        return connect(self.server, self.rid, self.tls_context, path)


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def handshake_headers(key=None, version="13"):
    """The opening handshake's own headers, for a raw Conn request made
    with upgrade="websocket" (which adds Upgrade and Connection)."""
    headers = [("Sec-WebSocket-Key", key or new_key())]
    if version is not None:
        headers.append(("Sec-WebSocket-Version", version))
    return headers


def frame(opcode, data, fin=True, mask=True):
    """A client frame as bytes, by websockets' codec."""
    return Frame(opcode, data, fin).serialize(mask=mask)


def close_frame(code, reason=""):
    return frame(Opcode.CLOSE, Close(code, reason).serialize())


def read_frame(conn, seconds=READ_SECONDS):
    """The next server frame on a raw Conn, parsed by websockets' codec."""
    def read_exact(n):
        return conn.read_exact(n, seconds=seconds)
        yield  # a generator that never has to wait: Conn reads with a deadline
    parser = Frame.parse(read_exact, mask=False, max_size=None, extensions=None)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("the WebSocket frame parser asked for more than it was given")


def close_code(frame_):
    """(code, reason) of a close frame; code 1005 when it has none."""
    close = Close.parse(frame_.data)
    return close.code, close.reason
