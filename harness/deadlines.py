"""Every wait in the suite has a deadline, and every deadline scales with one
factor, for slow machines and sanitizer builds."""

import os
import time

FACTOR_ENV = "CONFORMANCE_TIMEOUT_FACTOR"


# Beyond this a quiet period of 5 s is over eight minutes, and a backstop
# of minutes overflows what select() and poll() take: every case would end
# as an error, none as a verdict.
MAX_FACTOR = 100


def factor():
    raw = os.environ.get(FACTOR_ENV, "").strip() or "1"  # empty: unset
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{FACTOR_ENV}={raw!r} is not a number (e.g. 1, 2.5)")
    if not 0 < value <= MAX_FACTOR:  # also refuses nan and inf
        raise SystemExit(f"{FACTOR_ENV}={raw!r} must be greater than 0 and at most {MAX_FACTOR}")
    return value


def scaled(seconds):
    return seconds * factor()


class Deadline:
    """A point in time `seconds` (scaled, unless scale=False: for a period
    that is the stimulus itself, e.g. staying idle past MHD's timeout) from now."""

    def __init__(self, seconds, scale=True):
        self.seconds = scaled(seconds) if scale else seconds
        self.until = time.monotonic() + self.seconds

    def remaining(self):
        return max(0.0, self.until - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.until
