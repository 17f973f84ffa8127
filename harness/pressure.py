"""The client's side of backpressure (U-SOCK-4) against the reference
server's pressure script (servers/upgraded.c, run_pressure): one counted
stream each way, both at once. At the application's hold points one side
stops reading until the other side's sending has blocked, so that every
buffer between them fills; then both drain.

- hold "read": the application stops reading (event hold, dir read). The
  client keeps sending until its own send blocks (or it has nothing left),
  then releases the application (GET /release?of=RID on a connection of
  its own).
- hold "write": the application asks the client to stop reading (hold, dir
  write) and keeps sending until its send blocks (write_held); then the
  client reads again.

No sleep: every step waits for the event that ends it (the socket, or the
server's next event), and every wait has a deadline."""

import os
import selectors
from dataclasses import dataclass, field

from .client import READ_SECONDS, WireError, counted
from .streams import CAP_SECONDS, Loss, Progress, Slow, Stall
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


@dataclass
class Flow:
    """What the client saw of one pressure run."""
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    holds: list = field(default_factory=list)  # one dict per hold, in order
    end: dict = None  # the application's pressure_end event

    def in_flight(self):
        """Per hold, the bytes the path held when it was released: what one
        side had sent and the other had not yet read."""
        return [h["in_flight"] for h in self.holds if "in_flight" in h]


class _Outgoing:
    """The client's counted stream, encoded (TLS: into records) 16 KiB at a
    time as it goes out. `budget` bounds what is encoded (None: no bound,
    while a read hold fills the path); `sent` counts the plaintext of what
    the kernel took."""

    def __init__(self, conn, origin, budget):
        self.conn, self.origin, self.budget = conn, origin, budget
        self.at = 0         # plaintext encoded so far
        self.sent = 0       # plaintext whose encoding the kernel took
        self.pending = []   # [memoryview of encoded bytes, plaintext length]
        self.ended = False  # no new bytes after those already encoded

    def __bool__(self):
        """Has something to send now."""
        return bool(self.pending) or not self.ended and (self.budget is None or self.at < self.budget)

    def send(self):
        """Sends what the socket takes; True if it took anything."""
        moved = False
        while self:
            if not self.pending:
                size = 16384 if self.budget is None else min(16384, self.budget - self.at)
                chunk = counted(size, self.origin + self.at)
                self.at += len(chunk)
                self.pending.append([memoryview(self.conn.codec.encode(chunk)), len(chunk)])
            view, plain = self.pending[0]
            try:
                n = self.conn.sock.send(view)
            except BlockingIOError:
                return moved
            except (BrokenPipeError, ConnectionResetError):
                self.conn._eof, self.conn._end = True, "rst"
                raise WireError("backpressure: the connection was reset while the client sent "
                                f"({self.sent} bytes sent)\n" + self.conn.describe()) from None
            moved = True
            if n < len(view):
                self.pending[0][0] = view[n:]
                return moved
            self.pending.pop(0)
            self.sent += plain
        return moved


def drive(conn, release, step, holds, read_holds, origin=0, seconds=READ_SECONDS, cap_seconds=CAP_SECONDS):
    """Runs the client's side of the pressure script on the upgraded `conn`
    (/upgrade?then=pressure&n=`step`&pauses=`holds`): sends the counted
    stream from `origin` and reads the application's, both at once,
    following the application's holds, until its output has ended and it
    has read all of ours. Between holds each stream moves a step: first
    `step`, then the most the path held at a hold so far (told to the
    application with each release), so that every buffer on the path,
    whatever its size, drains completely between two fills. Our stream
    has `holds`+1 steps (if not `read_holds`: of `step`) and, during each
    read hold, whatever the path takes. `release(**query)` sends GET
    /release?of=RID&... Returns a Flow; judged by progress (a release is
    progress too): raises Stall if nothing moves for `seconds`, Slow if it
    still moves at `cap_seconds` (both scaled), Loss if the stream ends
    early."""
    flow = Flow()
    out = _Outgoing(conn, origin, step if read_holds else (holds + 1) * step)
    conn.transcript.sent += b"<the counted stream from %d>" % origin
    got = bytearray(conn._inbox)
    conn._inbox.clear()
    wake, _ = conn.server.subscribe()
    cursor = 0  # from the first event: a hold may have come before this call
    reading = True
    expect = None     # the length of the application's output, once it ends
    told = False      # the application knows where our stream ends
    ended = None      # the application's pressure_end event
    read_hold = None  # the application's read hold not yet released: its event
    blocked = False   # the socket took no more of ours since read_hold began
    released = 0      # read holds released
    progress = Progress(seconds, cap_seconds)
    sel = selectors.DefaultSelector()
    sel.register(wake, selectors.EVENT_READ)
    watching = 0  # the events the selector watches on the socket
    conn.sock.setblocking(False)
    try:
        while True:
            events, cursor = conn.server.events_after(cursor, conn.rid)
            for e in events:
                if e["ev"] == "hold" and e["dir"] == "read":
                    # Fill the path: send without bound until the socket
                    # takes no more; that is when our side has stopped.
                    read_hold = e
                    out.budget = None
                    out.send()
                    blocked = bool(out)
                elif e["ev"] == "hold" and e["dir"] == "write":
                    reading = False
                    flow.holds.append({"dir": "write", "k": e["k"], "received": len(got)})
                    # We have stopped reading: it may fill the path. A new
                    # step goes with the read holds' releases if there are
                    # any: our stream's budget follows those.
                    release(hold="write", **({} if read_holds else {"n": _step(step, flow)}))
                elif e["ev"] == "write_held":
                    reading = True
                    hold = next(h for h in reversed(flow.holds) if h["dir"] == "write")
                    hold["in_flight"] = e["sent"] - hold.pop("received")
                elif e["ev"] == "enough":
                    expect = e["sent"]
                elif e["ev"] == "pressure_end":
                    ended = e
            if read_hold is not None and blocked:
                # The path holds what we sent and the application has not read.
                flow.holds.append({"dir": "read", "k": read_hold["k"], "in_flight": out.sent - read_hold["read"]})
                read_hold, blocked = None, False
                released += 1
                out.budget = out.at + _step(step, flow)  # a step more, then the next hold (or the end)
                release(n=_step(step, flow))
                progress.moved()
                continue
            if not told and not out and read_hold is None and (not read_holds or released == holds):
                release(sent=out.sent)  # every byte of ours is with the kernel: that is the end
                out.ended = told = True
            if ended is not None and (ended["how"] != "done" or expect is not None and len(got) >= expect):
                break
            want_read = reading and (expect is None or len(got) < expect)
            mask = (selectors.EVENT_READ if want_read else 0) | (
                selectors.EVENT_WRITE if out and not blocked else 0)
            if mask != watching:
                if not mask:
                    sel.unregister(conn.sock)
                elif not watching:
                    sel.register(conn.sock, mask)
                else:
                    sel.modify(conn.sock, mask)
                watching = mask
            ready = sel.select(progress.remaining())
            for key, ev in ready:
                if key.fd == wake:
                    _drain(wake)
                    continue
                if ev & selectors.EVENT_READ:
                    raw = _recv(conn)
                    if raw == b"":
                        # The application CLOSEs after its pressure_end event,
                        # which may still be on its way to us.
                        ended = ended or conn.wait_event("pressure_end", seconds=seconds)
                        expect = _output_length(conn, expect)
                        if ended["how"] == "done" and len(got) == expect:
                            return _result(flow, out, got, ended, conn)
                        raise Loss(f"backpressure: the stream ended ({conn._end}) after {len(got)} bytes "
                                   f"(sent {out.sent}); the application's script: {_brief(ended)}\n"
                                   + conn.describe())
                    if raw:
                        got += conn.codec.decode(raw)
                        progress.moved()
                if ev & selectors.EVENT_WRITE:
                    if out.send():
                        progress.moved()
                    # The socket took all it could: with a read hold under
                    # way that is the event that ends our side's part.
                    blocked = bool(out) and read_hold is not None
            # The verdict after a look at the socket and the events: what came
            # while this process was not running (a loaded machine) is progress.
            if progress.expired():
                why = (f"no byte moved either way for {progress.quiet_seconds:.1f} s" if progress.stalled()
                       else f"still moving after {progress.elapsed():.0f} s, the cap")
                state = "reading" if reading else "not reading: the application fills the path"
                if read_hold:
                    state += f"; the application holds its reading (hold {read_hold['k']})"
                if expect is not None:
                    state += f"; the application's output ended after {expect} bytes"
                if ended is not None:
                    state += f"; the application's script has ended: {_brief(ended)}"
                raise (Stall if progress.stalled() else Slow)(
                    f"backpressure: {why}: sent {out.sent}, received {len(got)} bytes, {state}\n" + conn.describe())
    finally:
        sel.close()
        conn.server.unsubscribe(wake)
        conn.sock.setblocking(True)
    return _result(flow, out, got, ended, conn)


def _result(flow, out, got, ended, conn):
    flow.sent, flow.end = out.sent, ended
    flow.received = got
    conn.transcript.received += b"<%d bytes>" % len(got)
    return flow


def _step(first, flow):
    """The bytes between holds: at least the most the path held so far, so
    that what filled it has all been read before the next hold."""
    return max([first] + flow.in_flight())


def _output_length(conn, known):
    """The application's output length from its enough event."""
    if known is not None:
        return known
    enough = conn.events("enough")
    return enough[-1]["sent"] if enough else None


def _brief(event):
    return {k: v for k, v in event.items() if k not in ("t", "rid", "ev")}


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _recv(conn):
    """Raw bytes, b'' at the end of the stream, None if nothing was there."""
    try:
        raw = conn.sock.recv(262144)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        conn._eof, conn._end = True, "rst"
        return b""
    if not raw:
        conn._eof, conn._end = True, conn.codec.end_of_stream()
    return raw
