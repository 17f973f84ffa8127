"""Leak accounting: what a case leaves behind in a shared reference server.

Before a case first uses a server and after it ends, the suite asks the
server (GET /stats) for its open descriptors, MHD's connection count
(MHD_DAEMON_INFO_CURRENT_CONNECTIONS) and its live upgraded handles and
threads. A case whose figures do not come back within a (scaled) deadline
leaked; the next case would inherit what it left.

The /stats connection is counted in both snapshots alike. MHD closes a
connection's descriptor and takes it off its count shortly after the last
event a case waits for, so the figures are asked again until they settle."""

from .client import WireError
from .deadlines import Deadline
from .server import EventTimeout
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

# (field of the stats event, what one unit of it is)
FIGURES = (
    ("fds", "open descriptor"),
    ("connections", "MHD connection"),
    ("upgraded_handles", "upgraded handle not closed"),
    ("upgraded_threads", "upgraded-socket thread"),
)
SETTLE_SECONDS = 2.0


class LeakError(AssertionError):
    """A case left something open in a shared reference server."""


def snapshot(open_conn, srv):
    """The server's figures now; open_conn(srv) gives a fresh Conn."""
    conn = open_conn(srv)
    try:
        conn.request("/stats", upgrade=None)
        conn.read_head()
        event = conn.wait_event("stats")
    finally:
        conn.close()
    return {name: event.get(name, -1) for name, _ in FIGURES}


def grown(before, after):
    """What is higher after than before, each figure on its own, as words
    ([] if nothing). Lower is no leak: the leak check's own /stats
    connection of the snapshot before may still have been counted then. No
    earlier case's leftover can end meanwhile: a server a case failed on is
    replaced (plugin/fixtures.py, make_server)."""
    out = []
    for name, unit in FIGURES:
        b, a = before.get(name, -1), after.get(name, -1)
        if b >= 0 and a > b:
            out.append(f"{a - b} {unit}{'s' if a - b > 1 else ''} ({name} {b} -> {a})")
    return out


def check(open_conn, srv, before, seconds=SETTLE_SECONDS):
    """Raises LeakError if the figures stay above `before` for `seconds`."""
    deadline = Deadline(seconds)
    seen = []
    while True:
        try:
            after = snapshot(open_conn, srv)
        except (WireError, EventTimeout, OSError) as e:
            raise LeakError(f"{srv!r} did not answer GET /stats after the case: {e}") from None
        seen.append(after)
        left = grown(before, after)
        if not left or deadline.expired():
            break
    if left:
        raise LeakError(f"the case left behind in {srv!r}: {'; '.join(left)} "
                        f"(still after {deadline.seconds:.1f} s; before: {before}; "
                        f"asked {len(seen)} times)")
