"""What a byte stream did, judged by its progress, never by a total time.

A wait for bytes ends as a stall only after a quiet period: no byte moved
(in either direction, where both move) for QUIET_SECONDS, scaled. A
generous total cap stays as a last resort: a stream still moving when it
passes is slow, never lost. The four findings about a stream are told
apart, each worded as what was seen, each its own failure kind (a
baseline's signature can name each one):

  stall    no byte for N s after K of M bytes (the connection still open)
  loss     the stream ended (how) after K of M bytes: only a head arrived
  changed  the bytes differ from offset K on (or more came than was sent)
  slow     still moving when the cap passed: K of M bytes in T s, R KB/s

Standard library only."""

import time

from .deadlines import Deadline
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

QUIET_SECONDS = 5  # scaled: no byte for this long is a stall (loopback moves bytes in microseconds)
CAP_SECONDS = 600  # scaled: the last resort; a stream still moving then is slow (0.9.75's TLS: ~100 KB/s)


class WireError(AssertionError):
    """What reached the wire is not what the rule promises (malformed HTTP,
    a reset, a TLS error): a deviation, not a harness error."""


class Stall(WireError):
    """No byte moved for the quiet period."""


class Loss(WireError):
    """The stream ended before all of it arrived; what came is a head of it."""


class Changed(WireError):
    """The bytes that arrived are not the bytes sent."""


class Slow(WireError):
    """Still moving when the total cap passed."""


# The failure kind of each finding (harness/outcome.py KINDS), most
# specific first.
KIND_OF = ((Stall, "stall"), (Loss, "loss"), (Changed, "changed"), (Slow, "slow"))


class Progress:
    """The two deadlines of a wait for bytes: a quiet period that starts
    again whenever a byte moves, and a total cap."""

    def __init__(self, quiet=QUIET_SECONDS, cap=CAP_SECONDS, scale=True):
        self.quiet_seconds = Deadline(quiet, scale).seconds
        self._quiet = Deadline(self.quiet_seconds, scale=False)
        self._cap = Deadline(cap, scale)
        self.started = time.monotonic()
        self.last_move = self.started

    def moved(self):
        """A byte moved: the quiet period starts again."""
        self.last_move = time.monotonic()
        self._quiet = Deadline(self.quiet_seconds, scale=False)

    def remaining(self):
        return min(self._quiet.remaining(), self._cap.remaining())

    def expired(self):
        return self._quiet.expired() or self._cap.expired()

    def stalled(self):
        """The quiet period passed (rather than the cap)."""
        return self._quiet.expired()

    def elapsed(self):
        return time.monotonic() - self.started


def of(n, want):
    return f"{n} of {want}" if want is not None else f"{n}"


def stall_text(progress, got, want=None, what="bytes"):
    return f"no byte for {progress.quiet_seconds:.1f} s after {of(got, want)} {what}"


def slow_text(progress, got, want=None, what="bytes"):
    seconds = progress.elapsed()
    rate = got / seconds / 1000 if seconds > 0 else 0.0
    return (f"still moving after {seconds:.0f} s, the cap: {of(got, want)} {what} in {seconds:.0f} s "
            f"({rate:.1f} KB/s)")


def waited(progress, got, want=None, what="bytes", where=""):
    """The Stall or Slow for a wait that ran out, worded as seen."""
    if progress.stalled():
        return Stall(f"{where}{stall_text(progress, got, want, what)}")
    return Slow(f"{where}{slow_text(progress, got, want, what)}")


def first_difference(got, want):
    """The offset of the first byte where `got` and `want` differ (the
    shorter one's length if one is a prefix of the other), None if equal."""
    if got == want:
        return None
    step = 65536
    for at in range(0, min(len(got), len(want)), step):
        a, b = got[at:at + step], want[at:at + step]
        if a != b:
            for i, (x, y) in enumerate(zip(a, b)):
                if x != y:
                    return at + i
    return min(len(got), len(want))


def check_bytes(got, want, ending=None, what="", quiet_seconds=None, context=""):
    """Raises the finding that `got` (what arrived, then `ending`: how the
    stream ended, 'open' if it stalled, None if it is not over) shows about
    `want`: Changed if a byte differs or more came; Loss if the stream ended
    after a head of it; Stall if it stayed open after a head of it. `what`
    leads the message, `context` ends its first line."""
    lead = f"{what}: " if what else ""
    tail = f" ({context})" if context else ""
    at = first_difference(got, want)
    if at is None:
        return
    if at < len(got):
        extra = " (more bytes than were sent)" if at == len(want) else ""
        raise Changed(f"{lead}the bytes differ from offset {at} on{extra}: {len(got)} received, "
                      f"{len(want)} sent{tail}")
    if ending == "open":
        quiet = f"{quiet_seconds:.1f} s" if quiet_seconds is not None else "the quiet period"
        raise Stall(f"{lead}no byte for {quiet} after {len(got)} of {len(want)} bytes; the connection is "
                    f"still open{tail}")
    if ending is not None:
        raise Loss(f"{lead}the stream ended ({ending}) after {len(got)} of {len(want)} bytes{tail}")
    raise Loss(f"{lead}{len(got)} of {len(want)} bytes arrived{tail}")
