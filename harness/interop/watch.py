"""The progress of a real client's exchange with a server, seen from the
kernel: the byte counters of the TCP connections on the server's port,
whichever process holds their client end (a browser, Node). The same judge
as harness/ws.py's for the suite's own client: a stall is no byte moved,
either way, for the quiet period (harness/streams.py), never a total time;
a client with bytes it has not read yet is behind (a loaded machine), not
waiting on the server, as long as it reads them down: a client whose
unread bytes stay as they are for the quiet period has stopped reading,
and that is a stall too (whose, the message says). Bytes that the harness
hands a client's agent (a command: a 1 MiB message is 1.4 MB of JSON down
a pipe) or takes from it (its answer) count as moved too: while they
cross, the client is busy with the harness, not waiting on the server (on
a loaded machine a starved node can take seconds to read its command). A
stall says where the bytes stood: what each end had not read, and what it
had not yet had acknowledged."""

import re
import subprocess
import time
from collections import namedtuple

from ..streams import Progress, waited
from ..tracebacks import hidden as _hidden

__tracebackhide__ = _hidden

SAMPLE_SECONDS = 0.25  # how often the counters are read (a sampling period, not a wait for an event)
_COUNTER = re.compile(r"\bbytes_(?:acked|received):(\d+)")

# The TCP states in which one end still waits on the other: open, or
# closed by one end only (a client in FIN-WAIT-2 waits for the server's
# FIN). TIME-WAIT is over: both ends have closed.
WAITING = ("established", "fin-wait-1", "fin-wait-2", "close-wait", "last-ack", "closing")

# One end of a TCP connection: its TCP state, Recv-Q (unread) and Send-Q
# (not yet acknowledged by the peer), whether it is the client's end, and
# the bytes it has seen acknowledged and received (None: ss gave no TCP
# info for it this time).
End = namedtuple("End", "key state recv_q send_q client_side moved")


def connections(port):
    """[End] of the TCP connections to or from `port` on this machine that
    are not over yet, by `ss` (iproute2)."""
    states = [word for state in WAITING for word in ("state", state)]
    try:
        out = subprocess.run(["ss", "-tinHn", *states, f"( sport = :{port} or dport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_ss(out, port)


def parse_ss(out, port):
    """[End] from the text of `ss -tinHn` with more than one state (so that
    the state is the first column): each socket is a line (State Recv-Q
    Send-Q Local Peer), followed by an indented line of its TCP info, when
    the kernel gave one. A socket can come without it (one that was closing
    as ss read it; seen in CI), so a line belongs to the socket above it by
    its indentation, never by its place, and its bytes moved are unknown
    (None), not 0: a count that fell to 0 and came back would read as
    progress."""
    ends = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if ends:
                ends[-1] = ends[-1]._replace(moved=(ends[-1].moved or 0) + sum(int(n) for n in _COUNTER.findall(line)))
            continue
        fields = line.split()
        if len(fields) < 5 or not (fields[1].isdigit() and fields[2].isdigit()):
            continue
        ends.append(End(key=(fields[3], fields[4]), state=fields[0], recv_q=int(fields[1]), send_q=int(fields[2]),
                        client_side=fields[4].rsplit(":", 1)[-1] == str(port), moved=None))
    return ends


def where(ends):
    """Where the bytes stood, in words: each end's TCP state, its unread and
    unacknowledged bytes."""
    parts = [f"{'client' if e.client_side else 'server'} end {e.key[0]} {e.state}: {e.recv_q} unread, "
             f"{e.send_q} unacknowledged" for e in ends]
    return "; ".join(parts) or "no connection open"


class Watch:
    """check(): raises the Stall (or Slow) of harness/streams.py when no byte
    moved on the server's port for the quiet period. Counts only what moved
    since the watch began (a connection open before it counts from there)."""

    def __init__(self, port, what="the WebSocket exchange"):
        self.port = port
        self.what = what
        self.doing = None  # the client's operation under way (session.py), for the message
        self.progress = Progress()
        self.start = None  # {connection end: bytes it had moved when the watch began}
        self.seen = {}     # {connection end: bytes it had moved when last seen}
        self.unread = {}   # {client end: its unread bytes when last seen}
        self.ends = []
        self._next = 0.0

    def agent_moved(self):
        """Bytes crossed between the harness and the client's agent: the
        quiet period starts again."""
        self.progress.moved()

    def moved(self):
        """Bytes moved on the port since the watch began, by the kernel's count."""
        return sum(n - self.start.get(key, 0) for key, n in self.seen.items())

    def check(self):
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + SAMPLE_SECONDS
        self.ends = connections(self.port)
        counted = [e for e in self.ends if e.moved is not None]
        if self.start is None:
            self.start = {e.key: e.moved for e in counted}
        changed = any(self.seen.get(e.key) != e.moved for e in counted)
        self.seen.update((e.key, e.moved) for e in counted)
        unread = {e.key: e.recv_q for e in self.ends if e.client_side and e.recv_q > 0}
        reading = bool(unread) and unread != self.unread  # the client is behind, and reads them down
        self.unread = unread
        if changed or reading or not self.ends:
            # No connection left: the client is between connections, or
            # both ends have closed; it is not waiting on the server.
            self.progress.moved()
        if self.progress.expired():
            raise waited(self.progress, self.moved(), what=f"bytes moved ({where(self.ends)})",
                         where=f"{self.what}, in {self.doing}(): " if self.doing else f"{self.what}: ")
