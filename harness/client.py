"""The cases' HTTP client: raw bytes out, h11 (an independent, strict
HTTP/1.1 parser) on the way in, then the upgraded byte stream, and how the
connection ended. Everything sent and received is kept for the report."""

import selectors
import socket
import ssl
import struct
from dataclasses import dataclass, field

import h11

from . import events, ioloop
from .codec import PlainCodec, TLSCodec
from .deadlines import Deadline
from .streams import CAP_SECONDS, QUIET_SECONDS, Loss, Progress, Slow, Stall, WireError, waited
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

RID_HEADER = "X-Conformance-Id"
# Scaled: the quiet period of every wait for bytes MHD should send (no byte
# for this long is a stall); a wait that sees bytes moving goes on.
READ_SECONDS = QUIET_SECONDS
# An exchange's findings name the path the bytes took, not the harness's call;
# baselines' signatures match this prefix.
THROUGH_MHD = "sending and receiving through MHD: "
# The largest response head read_head takes (h11 stops at 16 KiB by
# default): U-CB-1 sends a 101 of 200 KB.
MAX_HEAD = 1 << 20


class Reset(WireError):
    """The peer reset the connection (or the socket failed) while the
    client read or wrote."""


class TLSFailure(WireError):
    """A TLS alert or a broken record from the server."""


def pattern(n, offset=0):
    """The reference server's pattern stream (upgraded.c: pattern_byte)."""
    return bytes((i % 251) for i in range(offset, offset + n))


_BLOCK = 4096
_PERIOD = pattern(251 + _BLOCK)


def counted(n, origin=0):
    """The counted stream (upgraded.c: counted_byte): every 4 KiB block
    starts with its 8-byte big-endian number, the rest is the pattern.
    It has no period, so a piece of any size lost, repeated or moved
    changes the bytes from there on, at the latest at the next block
    number; `origin` shifts it."""
    first, last = origin // _BLOCK, (origin + n + _BLOCK - 1) // _BLOCK
    blocks = b"".join(b.to_bytes(8, "big") + _PERIOD[(b + 8) % 251:(b + 8) % 251 + _BLOCK - 8]
                      for b in range(first, last))
    start = origin - first * _BLOCK
    return blocks[start:start + n]


def build_request(path, rid, method="GET", version="HTTP/1.1", headers=(), body=b"", upgrade="conformance/1",
                  host=True):
    """Raw request bytes. `upgrade` adds Upgrade + Connection: Upgrade (None
    leaves both out); `headers` are added verbatim, in order."""
    lines = [f"{method} {path} {version}"] + (["Host: 127.0.0.1"] if host else []) + [f"{RID_HEADER}: {rid}"]
    if upgrade is not None:
        lines += [f"Upgrade: {upgrade}", "Connection: Upgrade"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Head:
    status: int
    reason: str
    http_version: str
    headers: list  # (lower-case name, value) as h11 parsed them
    raw: bytes     # the head as received, up to and including the blank line

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def get(self, name):
        values = self.get_all(name)
        return values[0] if values else None

    def status_line(self):
        return self.raw.split(b"\r\n", 1)[0].decode("latin-1")


@dataclass
class Transcript:
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    end: str = ""


def _show(data, limit=600):
    data = bytes(data)
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes in all)"


class Tagged:
    """A client of `server` whose requests carry the id `rid`: the server's
    events about them."""

    def events(self, ev=None):
        return [e for e in self.server.events(self.rid) if ev is None or e["ev"] == ev]

    def wait_event(self, ev, seconds=READ_SECONDS, **match):
        def pred(e):
            return e.get("rid") == self.rid and e["ev"] == ev and all(e.get(k) == v for k, v in match.items())
        what = f"'{ev}' event" + (f" with {match}" if match else "") + f" for rid {self.rid}"
        return self.server.wait_event(pred, seconds, what, means=events.meaning(ev))


class Conn(Tagged):
    """One TCP connection to a reference server, tagged with a request id
    that the server puts on every event about it."""

    def __init__(self, server, rid, tls_context=None, handshake=True, sockbuf=None):
        self.server = server
        self.rid = rid
        self.transcript = Transcript()  # plaintext, both ways
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if sockbuf:
            # Before connect(), so that the TCP window follows: the client's
            # own buffers stay small next to MHD's (U-SOCK-4).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sockbuf)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sockbuf)
        self.sock.settimeout(Deadline(READ_SECONDS).seconds)
        try:
            self.sock.connect(("127.0.0.1", server.port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        self._inbox = bytearray()  # received but not yet handed out
        self._eof = False  # the peer's end of stream was seen
        self._end = ""     # how: fin, close_notify, fin-without-close_notify
        self._h11 = None
        self.head = None
        self.codec = TLSCodec(tls_context) if tls_context is not None else PlainCodec()
        # How an orderly end looks on this transport: FIN, or TLS close_notify.
        self.clean_end = self.codec.clean_end
        if tls_context is not None and handshake:
            self.handshake()

    def handshake(self, seconds=READ_SECONDS):
        """The TLS handshake (plain: nothing to do); Stall when no byte comes
        for `seconds` (scaled)."""
        if isinstance(self.codec, PlainCodec):
            return
        progress = Progress(seconds)
        raw = b""
        received = 0
        while True:
            try:
                out, done = self.codec.handshake_step(raw)
            except ssl.SSLError as e:
                raise TLSFailure(f"the TLS handshake failed: {e}\n" + self.describe()) from None
            if out:
                self._write(out, progress)
            if done:
                return
            raw = None
            while raw is None:
                # A try at the socket before any verdict: bytes that came
                # while this process was not running are progress.
                self.sock.settimeout(progress.remaining())
                try:
                    raw = self.sock.recv(65536)
                except (socket.timeout, BlockingIOError):
                    if progress.expired():
                        raise waited(progress, received, where="the TLS handshake: ") from None
                except ConnectionResetError:
                    raise Reset("the server reset the connection during the TLS handshake") from None
            if not raw:
                raise WireError("the server ended the connection during the TLS handshake")
            received += len(raw)
            progress.moved()

    def describe(self):
        return (f"connection rid={self.rid} (client port {self.local_port}):\n"
                f"  sent:     {_show(self.transcript.sent)}\n"
                f"  received: {_show(self.transcript.received)}\n"
                f"  ended:    {self.transcript.end or 'not observed'}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Ends the TCP connection with a reset (SO_LINGER of 0, then close):
        no close_notify, no FIN, and whatever the client had not read is
        dropped."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    # -- sending ------------------------------------------------------------
    def _write(self, raw, progress=None):
        """Writes raw bytes, judged by progress: Stall when the socket takes
        no byte for the quiet period, Slow at the cap; Reset when the peer
        is gone."""
        progress = progress or Progress()
        view = memoryview(raw)
        while view:
            self.sock.settimeout(progress.remaining())
            try:
                n = self.sock.send(view)
            except (socket.timeout, BlockingIOError):
                if progress.expired():
                    raise waited(progress, len(raw) - len(view), len(raw), "bytes taken",
                                 "sending: ") from None
                continue
            except OSError as e:
                raise Reset(f"sending failed: {e.strerror or e} (the server reset or closed the connection)\n"
                            + self.describe()) from None
            view = view[n:]
            progress.moved()

    def send(self, data):
        self.transcript.sent += data
        self._write(self.codec.encode(data))

    def send_parts(self, parts, one_write=True):
        """Sends each part as its own TLS record (plain: its own write); all
        in one TCP write, or one write per part."""
        raws = []
        for part in parts:
            self.transcript.sent += part
            raws.append(self.codec.encode(part))
        for raw in ([b"".join(raws)] if one_write else raws):
            self._write(raw)

    def request(self, path, method="GET", eager=b"", **kw):
        """Sends a request and `eager` bytes in the same write."""
        self._method = method
        data = build_request(path, self.rid, method=method, **kw)
        self.send(data + eager)
        return data

    def shutdown_write(self, close_notify=True, fin=True):
        """Ends the client's sending side: TLS close_notify (if TLS and
        `close_notify`), then TCP FIN (if `fin`)."""
        if close_notify:
            raw = self.codec.close_write()
            if raw:
                self._write(raw)
        if fin:
            self.sock.shutdown(socket.SHUT_WR)

    # -- receiving ----------------------------------------------------------
    # Every wait for bytes is judged by progress (harness/streams.py): it
    # runs out only after a quiet period with no byte, or at the cap.
    @property
    def end(self):
        """How the peer's end of the stream was seen ('fin', 'close_notify',
        'fin-without-close_notify', 'rst', 'tls-error (...)'); '' while it
        has not been."""
        return self._end

    def take_inbox(self):
        """What was received but not yet handed out (read past what an
        earlier reader asked for); the inbox is then empty."""
        data = bytes(self._inbox)
        self._inbox.clear()
        return data

    def _recv(self, progress):
        """Some plaintext (first what is already in the inbox); b'' at the
        end of the stream (self._end says how); None when the wait ran out
        (progress says whether it stalled or hit the cap). Raises Reset on
        a reset, TLSFailure on a TLS alert or a broken record."""
        if self._inbox:
            return self.take_inbox()
        while not self._eof:
            # A try at the socket before any verdict: bytes that came while
            # this process was not running (a loaded machine) are progress.
            self.sock.settimeout(progress.remaining())
            try:
                raw = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                if progress.expired():
                    return None
                continue
            except OSError as e:
                self._eof, self._end = True, "rst"
                self.transcript.end = "rst"
                raise Reset(f"the server reset the connection ({e.strerror or e})\n" + self.describe()) from None
            if not raw:
                self._eof, self._end = True, self.codec.end_of_stream()
                break
            progress.moved()  # a TLS record's bytes move before its plaintext is whole
            data = self._plaintext(raw)
            if data:
                self.transcript.received += data
                return data
        return b""

    def _recv_or_raise(self, progress, got, want=None, what="bytes", where=""):
        """_recv, with the Stall or Slow finding when the wait runs out."""
        data = self._recv(progress)
        if data is None:
            raise waited(progress, got, want, what, where) from None
        return data

    def recv_nowait(self, progress=None):
        """What the socket has now, without waiting: the plaintext; b'' at
        the end of the stream (self.end says how; a reset is 'rst'); None
        when no plaintext came (nothing was there, or only part of a TLS
        record). Bytes that came are progress. Not kept in the transcript:
        each caller keeps what it received. Raises TLSFailure on a TLS
        alert or a broken record."""
        if self._eof:
            return b""
        try:
            raw = self.sock.recv(262144)
        except BlockingIOError:
            return None
        except ConnectionResetError:
            self._eof, self._end = True, "rst"
            return b""
        if not raw:
            self._eof, self._end = True, self.codec.end_of_stream()
            return b""
        if progress is not None:
            progress.moved()  # a TLS record's bytes move before its plaintext is whole
        data = self._plaintext(raw)
        return data if data or self._eof else None

    def send_nowait(self, raw):
        """Writes what the socket takes now of `raw` (encoded bytes): how
        many it took, 0 when it is full; None when the peer reset the
        connection (self.end is then 'rst')."""
        try:
            return self.sock.send(raw)
        except BlockingIOError:
            return 0
        except (BrokenPipeError, ConnectionResetError):
            self._eof, self._end = True, "rst"
            return None

    def _plaintext(self, raw):
        """The plaintext of `raw` as the socket gave it; a close_notify in
        it ends the stream."""
        data = self._decode(raw)
        if self.codec.peer_closed:
            self._eof, self._end = True, "close_notify"
        return data

    def _decode(self, raw):
        try:
            return self.codec.decode(raw)
        except ssl.SSLError as e:
            self._eof, self._end = True, f"tls-error ({e.reason or e})"
            self.transcript.end = self._end
            raise TLSFailure(f"TLS error from the server: {e}\n" + self.describe()) from None

    def read_head(self, seconds=READ_SECONDS):
        """Reads and parses the response head (a 100 Continue is skipped and
        kept in the transcript). Raises WireError on anything h11 rejects,
        Stall when no byte comes for `seconds` (scaled)."""
        method = getattr(self, "_method", "GET")
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        # The proposal lets h11 accept a 101; the real request (bytes above)
        # may differ, but h11 only judges the response here.
        conn.send(h11.Request(method=method, target="/", headers=[
            ("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "x")]))
        conn.send(h11.EndOfMessage())
        progress = Progress(seconds)
        fed = bytearray()
        skipped = 0  # informational responses before the final head
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                raise WireError(f"the response is not valid HTTP/1.1 ({e})\n" + self.describe()) from None
            if event is h11.NEED_DATA:
                data = self._recv_or_raise(progress, len(fed), what="bytes of the response head",
                                           where="waiting for the response: ")
                fed += data
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                raise WireError("the connection closed before a response head arrived\n" + self.describe())
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                skipped += 1
                continue
            break
        raw_all = bytes(fed)
        pos = 0
        for _ in range(skipped):
            pos = raw_all.index(b"\r\n\r\n", pos) + 4
        head_raw = raw_all[pos:raw_all.index(b"\r\n\r\n", pos) + 4]
        if event.status_code == 101:
            self._inbox[:0] = conn.trailing_data[0]
        else:
            self._h11 = conn
        self.head = Head(
            status=event.status_code,
            reason=event.reason.decode("latin-1"),
            http_version=event.http_version.decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers],
            raw=head_raw,
        )
        return self.head

    def read_raw_head(self, seconds=READ_SECONDS):
        """The next head as raw bytes, up to its blank line, unparsed (to see
        interim responses that read_head() skips)."""
        progress = Progress(seconds)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            data = self._recv_or_raise(progress, len(buf), what="bytes of a response head",
                                       where="waiting for a response head: ")
            if not data:
                raise WireError(f"the stream ended inside a response head: {bytes(buf)!r}\n" + self.describe())
            buf += data
        end = buf.index(b"\r\n\r\n") + 4
        self._inbox[:0] = buf[end:]
        return bytes(buf[:end])

    def read_body(self, seconds=READ_SECONDS):
        """The body of a non-101 response, as h11 frames it."""
        assert self._h11 is not None, "read_head() first, and only for a non-101 response"
        progress = Progress(seconds)
        body = bytearray()
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                raise WireError(f"the response body is not valid HTTP/1.1 ({e})\n" + self.describe()) from None
            if event is h11.NEED_DATA:
                self._h11.receive_data(self._recv_or_raise(progress, len(body), what="bytes of the response body",
                                                           where="waiting for the response body: "))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return bytes(body)

    def read_exact(self, n, seconds=READ_SECONDS):
        """n bytes of the upgraded stream. Loss if it ends first; Stall if no
        byte comes for `seconds` (scaled); Slow at the cap."""
        progress = Progress(seconds)
        buf = bytearray()
        while len(buf) < n:
            data = self._recv_or_raise(progress, len(buf), n)
            if not data:
                raise Loss(f"the stream ended ({self._end}) after {len(buf)} of {n} expected bytes\n"
                           + self.describe())
            buf += data
        self._inbox[:0] = buf[n:]
        return bytes(buf[:n])

    def read_to_end(self, seconds=READ_SECONDS, scale=True):
        """Everything until the connection ends, and how it ended: 'fin'
        (plain: orderly end of stream), 'close_notify' (TLS: orderly),
        'fin-without-close_notify' (TLS: the TCP stream ended bare), 'rst'
        (reset), 'tls-error (...)' (an alert or a broken record), or 'open'
        (no byte for `seconds`, scaled: a stall; self.quiet_seconds says how
        long that was). None of them is an exception: each caller says
        which endings its rule allows. `clean_end` is the orderly one. A
        stream still moving at the cap raises Slow."""
        progress = Progress(seconds, scale=scale)
        self.quiet_seconds = progress.quiet_seconds
        buf = bytearray()
        while True:
            try:
                data = self._recv(progress)
            except (Reset, TLSFailure):
                return bytes(buf), self._end
            if data is None:
                if not progress.stalled():
                    raise waited(progress, len(buf), where="reading to the end of the stream: ") from None
                self.transcript.end = f"open (no byte for {progress.quiet_seconds:.1f} s)"
                return bytes(buf), "open"
            if not data:
                self.transcript.end = self._end
                return bytes(buf), self._end
            buf += data

    def exchange(self, data, expect=0, seconds=READ_SECONDS, cap_seconds=CAP_SECONDS):
        """Sends `data` while reading, both at once (neither side can block
        the other), until all is sent and `expect` bytes were read; returns
        those bytes. Bytes read beyond them stay in the inbox. With
        expect=0 it only keeps reading while it sends (for a request with a
        large eager body: the response is then read with read_head).
        Judged by progress: Stall when no byte moved either way for
        `seconds`, Slow at `cap_seconds` (both scaled), Loss when the
        stream ends first."""
        progress = Progress(seconds, cap_seconds)
        got = bytearray(self.take_inbox())
        self.transcript.sent += data
        wire = self.codec.encode(data)
        view = memoryview(wire)  # what is still to send

        def done():
            return self._eof or not (len(got) < expect or view)

        def watched():
            return [(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if view else 0))]

        def ready(sock, mask):
            nonlocal view
            if mask & selectors.EVENT_READ:
                chunk = self.recv_nowait(progress)
                if chunk:
                    self.transcript.received += chunk
                    got.extend(chunk)
            if mask & selectors.EVENT_WRITE and not self._eof:
                n = self.send_nowait(view[:262144])
                if n:
                    progress.moved()
                    view = view[n:]

        def judge():
            # The verdict after a look at the socket: what came while this
            # process was not running (a loaded machine) is progress.
            if progress.expired() and not done():
                sent = len(wire) - len(view)
                what = (f"no byte moved either way for {progress.quiet_seconds:.1f} s"
                        if progress.stalled() else
                        f"still moving after {progress.elapsed():.0f} s, the cap")
                cls = Stall if progress.stalled() else Slow
                raise cls(f"{THROUGH_MHD}{what}: sent {sent} of {len(wire)} bytes (on the wire), received "
                          f"{len(got)} of {expect}\n" + self.describe())

        self.sock.setblocking(False)
        try:
            ioloop.run(watched, ready, done, lambda: min(progress.remaining(), 1.0), judge)
        finally:
            self.sock.setblocking(True)
        if self._eof and (len(got) < expect or view):
            # The peer ended the stream (or reset it) before it took
            # everything, or before everything expected came back.
            raise (Reset if self._end == "rst" else Loss)(
                f"{THROUGH_MHD}the stream ended ({self._end}) after {len(got)} of {expect} bytes received, "
                f"with {len(view)} bytes (on the wire) still to send\n" + self.describe())
        self._inbox[:0] = got[expect:]
        return bytes(got[:expect])

    # -- what the server saw ------------------------------------------------
    def queue_results(self, what=None):
        return [e["result"] for e in self.events("queue") if what is None or e["what"] == what]

