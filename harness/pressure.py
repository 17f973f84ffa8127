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

from . import ioloop
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
            n = self.conn.send_nowait(view)
            if n is None:
                raise WireError("backpressure: the connection was reset while the client sent "
                                f"({self.sent} bytes sent)\n" + self.conn.describe())
            if not n:
                return moved
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
    conn.transcript.sent += b"<the counted stream from %d>" % origin
    wake, _ = conn.server.subscribe()
    conn.sock.setblocking(False)
    try:
        run = _Run(conn, wake, release, step, holds, read_holds, origin, seconds, cap_seconds)
        ioloop.run(run.watched, run.ready, run.done, run.progress.remaining, run.judge)
    finally:
        conn.server.unsubscribe(wake)
        conn.sock.setblocking(True)
    run.flow.sent, run.flow.end = run.out.sent, run.ended
    run.flow.received = run.got
    conn.transcript.received += b"<%d bytes>" % len(run.got)
    return run.flow


class _Run:
    """One pressure run: what the client knows of it, and its steps, which
    ioloop.run takes in turn."""

    def __init__(self, conn, wake, release, step, holds, read_holds, origin, seconds, cap_seconds):
        self.conn, self.release, self.step, self.holds, self.read_holds = conn, release, step, holds, read_holds
        self.seconds = seconds
        self.flow = Flow()
        self.out = _Outgoing(conn, origin, step if read_holds else (holds + 1) * step)
        self.got = bytearray(conn.take_inbox())
        self.wake = wake      # the server's events fd (server.subscribe): readable when an event came
        self.cursor = 0       # from the first event: a hold may have come before this call
        self.reading = True
        self.expect = None    # the length of the application's output, once it ends
        self.told = False     # the application knows where our stream ends
        self.ended = None     # the application's pressure_end event
        self.read_hold = None  # the application's read hold not yet released: its event
        self.blocked = False  # the socket took no more of ours since read_hold began
        self.released = 0     # read holds released
        self.finished = False  # the stream ended where the application's script says
        self.progress = Progress(seconds, cap_seconds)

    def done(self):
        """Follows the server's events; True once the run is over."""
        if self.finished:
            return True
        self.follow_events()
        while self.read_hold is not None and self.blocked:
            # The path holds what we sent and the application has not read.
            self.flow.holds.append({"dir": "read", "k": self.read_hold["k"],
                                    "in_flight": self.out.sent - self.read_hold["read"]})
            self.read_hold, self.blocked = None, False
            self.released += 1
            self.out.budget = self.out.at + _step(self.step, self.flow)  # a step more, then the next hold (or the end)
            self.release(n=_step(self.step, self.flow))
            self.progress.moved()
            self.follow_events()
        if (not self.told and not self.out and self.read_hold is None
                and (not self.read_holds or self.released == self.holds)):
            self.release(sent=self.out.sent)  # every byte of ours is with the kernel: that is the end
            self.out.ended = self.told = True
        ended = self.ended
        return ended is not None and (ended["how"] != "done" or self.expect is not None and len(self.got) >= self.expect)

    def follow_events(self):
        events, self.cursor = self.conn.server.events_after(self.cursor, self.conn.rid)
        for e in events:
            if e["ev"] == "hold" and e["dir"] == "read":
                # Fill the path: send without bound until the socket
                # takes no more; that is when our side has stopped.
                self.read_hold = e
                self.out.budget = None
                self.out.send()
                self.blocked = bool(self.out)
            elif e["ev"] == "hold" and e["dir"] == "write":
                self.reading = False
                self.flow.holds.append({"dir": "write", "k": e["k"], "received": len(self.got)})
                # We have stopped reading: it may fill the path. A new
                # step goes with the read holds' releases if there are
                # any: our stream's budget follows those.
                self.release(hold="write", **({} if self.read_holds else {"n": _step(self.step, self.flow)}))
            elif e["ev"] == "write_held":
                self.reading = True
                hold = next(h for h in reversed(self.flow.holds) if h["dir"] == "write")
                hold["in_flight"] = e["sent"] - hold.pop("received")
            elif e["ev"] == "enough":
                self.expect = e["sent"]
            elif e["ev"] == "pressure_end":
                self.ended = e

    def watched(self):
        """The server's events, and on the socket only what we want now."""
        want_read = self.reading and (self.expect is None or len(self.got) < self.expect)
        mask = (selectors.EVENT_READ if want_read else 0) | (
            selectors.EVENT_WRITE if self.out and not self.blocked else 0)
        return [(self.wake, selectors.EVENT_READ), (self.conn.sock, mask)]

    def ready(self, file, mask):
        if self.finished:
            return
        if file == self.wake:
            _drain(self.wake)
            return
        if mask & selectors.EVENT_READ:
            data = self.conn.recv_nowait(self.progress)
            if data == b"":
                self.at_end()
                return
            if data:
                self.got += data
        if mask & selectors.EVENT_WRITE:
            if self.out.send():
                self.progress.moved()
            # The socket took all it could: with a read hold under
            # way that is the event that ends our side's part.
            self.blocked = bool(self.out) and self.read_hold is not None

    def at_end(self):
        """The stream ended: where the application's script says, or early."""
        conn, got = self.conn, self.got
        # The application CLOSEs after its pressure_end event, which may
        # still be on its way to us.
        self.ended = self.ended or conn.wait_event("pressure_end", seconds=self.seconds)
        self.expect = _output_length(conn, self.expect)
        if self.ended["how"] == "done" and len(got) == self.expect:
            self.finished = True
            return
        raise Loss(f"backpressure: the stream ended ({conn.end}) after {len(got)} bytes "
                   f"(sent {self.out.sent}); the application's script: {_brief(self.ended)}\n" + conn.describe())

    def judge(self):
        """The verdict after a look at the socket and the events: what came
        while this process was not running (a loaded machine) is progress."""
        progress = self.progress
        if self.finished or not progress.expired():
            return
        why = (f"no byte moved either way for {progress.quiet_seconds:.1f} s" if progress.stalled()
               else f"still moving after {progress.elapsed():.0f} s, the cap")
        state = "reading" if self.reading else "not reading: the application fills the path"
        if self.read_hold:
            state += f"; the application holds its reading (hold {self.read_hold['k']})"
        if self.expect is not None:
            state += f"; the application's output ended after {self.expect} bytes"
        if self.ended is not None:
            state += f"; the application's script has ended: {_brief(self.ended)}"
        raise (Stall if progress.stalled() else Slow)(
            f"backpressure: {why}: sent {self.out.sent}, received {len(self.got)} bytes, {state}\n"
            + self.conn.describe())


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

