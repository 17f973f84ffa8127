"""The Python interop clients, each as its users meet it: websockets and
aiohttp with their defaults (their own pings, their own offer of
permessage-deflate, their own way to close), wsproto over a socket of the
harness's own (wsproto does no I/O). Only what a case needs is set: a
message size without limit (1 MiB and more) and the test CA."""

import asyncio
import importlib
import socket
import urllib.parse

from ..deadlines import Deadline
from ..tracebacks import hidden as _hidden
from .base import POLL_SECONDS, Client, ClientBroken, ClientSaw

__tracebackhide__ = _hidden

# wsproto leaves the end of the TCP connection to its user: after the
# closing handshake this one waits for the server's end (RFC 6455 section
# 7.1.1) at most this long (scaled), then ends it itself, as a user of it
# might; also the most end() waits for a client to let go.
CLOSE_SECONDS = 1


def _module(name, package):
    """A client's Python module, or ClientBroken naming its Debian package."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ClientBroken(f"the Python module {name} is missing: install the Debian package {package}") from None


class _AsyncClient(Client):
    """A client on asyncio: each operation runs on the client's own event
    loop, in slices of POLL_SECONDS between which the watch is checked."""

    errors = (OSError, asyncio.IncompleteReadError)

    def __init__(self, watch, tls=None):
        super().__init__(watch, tls)
        self.loop = asyncio.new_event_loop()
        self.conn = None

    def _run(self, coro):
        async def bounded():
            task = asyncio.ensure_future(coro)
            try:
                while True:
                    done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
                    if done:
                        return task.result()
                    self.watch.check()
            finally:
                task.cancel()
        try:
            return self.loop.run_until_complete(bounded())
        except self.errors as e:
            raise ClientSaw(f"{self.name}: {type(e).__name__}: {e}") from None

    def _context(self):
        return self.tls.client_context() if self.tls else None

    def end(self):
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(asyncio.wait_for(self._release(), Deadline(CLOSE_SECONDS).seconds))
        except (asyncio.TimeoutError, *self.errors):
            # Not let go in time: ended at once, so that no connection
            # outlives the case (a server's stop would wait on it).
            self._abort()
            self.loop.run_until_complete(asyncio.sleep(0))  # the transports' own end runs on the loop
        finally:
            self._cancel_the_rest()
            self.loop.close()

    def _cancel_the_rest(self):
        """Cancels what the library left running on the loop (websockets'
        close_connection after an abort), as asyncio.run does, so that the
        loop does not close on pending tasks ("Task was destroyed but it is
        pending!" in CI's output). A task that ignores its cancellation is
        left after CLOSE_SECONDS."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=Deadline(CLOSE_SECONDS).seconds))

    def _abort(self):
        """Ends the client's connections at once (a reset)."""


class Websockets(_AsyncClient):
    name = "websockets"
    package = "python3-websockets"
    features = frozenset({"fragments", "pings"})

    def __init__(self, watch, tls=None):
        websockets = _module("websockets", self.package)
        super().__init__(watch, tls)
        self.lib = websockets
        self.errors = _AsyncClient.errors + (websockets.exceptions.WebSocketException,)

    def open(self, url, protocols, first=None):
        async def connect():
            # close_timeout as websockets has it (10 s): how long it waits
            # for the server to end the TCP connection is part of how it
            # meets MHD.
            self.conn = await self.lib.connect(url, ssl=self._context(), subprotocols=protocols, max_size=None)
            return self.conn.subprotocol
        return self._run(connect())

    def send(self, message):
        self._run(self.conn.send(message))

    def send_fragments(self, parts):
        self._run(self.conn.send(iter(parts)))  # a frame per part

    def recv(self):
        return self._run(self.conn.recv())

    def ping(self, data):
        async def ping():
            await (await self.conn.ping(data))  # resolved by a pong with the same data
            return data
        return self._run(ping())

    def close(self, code, reason):
        async def close():
            await self.conn.close(code, reason)
            got = self.conn.close_rcvd
            if got is None:
                raise ClientSaw(f"websockets: the connection ended without the server's close frame "
                                f"(close code {self.conn.close_code})")
            return got.code, got.reason
        return self._run(close())

    async def _release(self):
        if self.conn is not None:
            await self.conn.close()

    def _abort(self):
        if self.conn is not None:
            self.conn.transport.abort()


class Aiohttp(_AsyncClient):
    """aiohttp's client WebSocket. autoping off: with it on, aiohttp answers
    pings and swallows pongs itself, and the ping case could not see the
    pong (the server never pings, so nothing else changes)."""

    name = "aiohttp"
    package = "python3-aiohttp"
    features = frozenset({"pings"})

    def __init__(self, watch, tls=None):
        aiohttp = _module("aiohttp", self.package)
        super().__init__(watch, tls)
        self.lib = aiohttp
        self.errors = _AsyncClient.errors + (aiohttp.ClientError,)
        self.session = None

    def open(self, url, protocols, first=None):
        async def connect():
            self.session = self.lib.ClientSession()
            self.conn = await self.session.ws_connect(url, protocols=protocols, ssl=self._context() or False,
                                                      max_msg_size=0, autoping=False)
            return self.conn.protocol
        return self._run(connect())

    def send(self, message):
        self._run(self.conn.send_str(message) if isinstance(message, str) else self.conn.send_bytes(message))

    def send_fragments(self, parts):
        raise NotImplementedError("aiohttp sends every message as one frame")

    async def _next(self, *types):
        kinds = self.lib.WSMsgType
        while True:
            msg = await self.conn.receive()
            if msg.type in types:
                return msg
            if msg.type in (kinds.TEXT, kinds.BINARY, kinds.PING, kinds.PONG):
                raise ClientSaw(f"aiohttp: a {msg.type.name} message came where the case waited for "
                                f"{' or '.join(t.name for t in types)}")
            raise ClientSaw(f"aiohttp: {msg.type.name} ({msg.data!r}, {msg.extra!r}) where the case waited for "
                            f"{' or '.join(t.name for t in types)}")

    def recv(self):
        kinds = self.lib.WSMsgType
        return self._run(self._next(kinds.TEXT, kinds.BINARY)).data

    def ping(self, data):
        async def ping():
            await self.conn.ping(data)
            return (await self._next(self.lib.WSMsgType.PONG)).data
        return self._run(ping())

    def close(self, code, reason):
        async def close():
            await self.conn.close(code=code, message=reason.encode())
            if self.conn.exception() is not None:
                raise ClientSaw(f"aiohttp: the close ended with {self.conn.exception()!r}")
            return self.conn.close_code, None  # aiohttp keeps the server's code, not its reason
        return self._run(close())

    async def _release(self):
        if self.conn is not None:
            await self.conn.close()
        if self.session is not None:
            await self.session.close()


class Wsproto(Client):
    """wsproto's state machine over a blocking socket of the harness's own.
    wsproto only refuses to send a message before the 101: its frame layer
    can build one, so this client sends its first frame in the handshake's
    own write (early), as a client that does not wait may."""

    name = "wsproto"
    package = "python3-wsproto"
    features = frozenset({"fragments", "pings", "early"})

    def __init__(self, watch, tls=None):
        _module("wsproto", self.package)
        super().__init__(watch, tls)
        self.sock = None
        self.ws = None
        self.events = []
        self.parts = []

    def open(self, url, protocols, first=None):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request
        where = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((where.hostname, where.port))
        if self.tls:
            self.sock = self.tls.client_context().wrap_socket(self.sock, server_hostname=where.hostname)
        self.sock.settimeout(POLL_SECONDS)
        self.ws = WSConnection(ConnectionType.CLIENT)
        data = self.ws.send(Request(host=where.netloc, target=f"{where.path}?{where.query}",
                                    subprotocols=list(protocols)))
        if first is not None:
            data += _frame(first)
        self._write(data)
        accepted = self._wait("AcceptConnection", "RejectConnection")
        if type(accepted).__name__ == "RejectConnection":
            raise ClientSaw(f"wsproto: the handshake was refused with {accepted.status_code}")
        return accepted.subprotocol

    def send(self, message):
        self._write(self.ws.send(_message(message)))

    def send_fragments(self, parts):
        for i, part in enumerate(parts):
            self._write(self.ws.send(_message(part, finished=i == len(parts) - 1)))

    def recv(self):
        while True:
            part = self._wait("TextMessage", "BytesMessage")
            self.parts.append(part.data)
            if part.message_finished:
                whole = ("" if isinstance(part.data, str) else b"").join(self.parts)
                self.parts = []
                return whole

    def ping(self, data):
        from wsproto.events import Ping
        self._write(self.ws.send(Ping(payload=data)))
        return self._wait("Pong").payload

    def close(self, code, reason):
        from wsproto.events import CloseConnection
        self._write(self.ws.send(CloseConnection(code=code, reason=reason)))
        got = self._wait("CloseConnection")
        # RFC 6455 section 7.1.1: the server ends the TCP connection first;
        # the client waits for it a while (CLOSE_SECONDS).
        done = Deadline(CLOSE_SECONDS)
        while not done.expired() and self._read():
            pass
        return got.code, got.reason

    def end(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _write(self, data):
        """All of `data`, a send at a time: the socket's timeout is the
        watch's slice, not a limit (sendall would give up after it)."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except (socket.timeout, TimeoutError):
                self.watch.check()
            except OSError as e:
                raise ClientSaw(f"wsproto: sending: {type(e).__name__}: {e}") from None

    def _read(self):
        """Feeds what arrives to wsproto; False once the stream ended."""
        try:
            data = self.sock.recv(1 << 16)
        except (socket.timeout, TimeoutError):
            return True
        except OSError as e:
            raise ClientSaw(f"wsproto: receiving: {type(e).__name__}: {e}") from None
        self.ws.receive_data(data or None)
        self.events.extend(self.ws.events())
        return bool(data)

    def _wait(self, *names):
        """The next event of one of these kinds; a pong, or an unexpected
        event (a close frame the case did not wait for), is a finding."""
        while True:
            while self.events:
                event = self.events.pop(0)
                if type(event).__name__ in names:
                    return event
                raise ClientSaw(f"wsproto: {event!r} where the case waited for {' or '.join(names)}")
            if not self._read():
                self.events.extend(self.ws.events())
                if not self.events:
                    raise ClientSaw(f"wsproto: the connection ended where the case waited for {' or '.join(names)}")
            self.watch.check()


def _message(data, finished=True):
    from wsproto.events import BytesMessage, TextMessage
    kind = TextMessage if isinstance(data, str) else BytesMessage
    return kind(data=data, message_finished=finished)


def _frame(data):
    """A whole client frame (masked), by wsproto's own frame layer (text
    for str, binary for bytes)."""
    from wsproto.frame_protocol import FrameProtocol
    return FrameProtocol(client=True, extensions=[]).send_data(data, fin=True)
