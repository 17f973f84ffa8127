"""What the system may do under MHD (servers/faults.c, rules U-FAULT-*):
the named schedules a case asks for, the environment that sets them, and
the seed that replays them. A fault is not a mutant: every result it makes,
a POSIX system may give."""

import zlib
from contextlib import contextmanager

from .server import EventTimeout

# SO_SNDBUF/SO_RCVBUF asked for the upgraded TCP socket and the socket pair:
# Linux doubles it and keeps at least 4608 bytes (TCP) or 2304 (AF_UNIX), so
# that a few KiB already come back in short counts and EAGAIN.
SOCKBUF = 2048
# One call in EVERY fails, of those the schedule names.
EVERY = 3
# Scaled: a fault's report crosses the event pipe in milliseconds.
STRIKE_SECONDS = 2

# name -> (CONFORMANCE_FAULTS without the seed, what the schedule must be
# seen to do: the "fault" events' `what`). A case may judge MHD under a
# schedule only once it struck: a fault that never struck tested nothing.
SCHEDULES = {
    "small-buffers": (f"sockbuf={SOCKBUF}", {"sockbuf"}),
    "eintr": (f"eintr={EVERY}", {"eintr"}),
    "enobufs": (f"lowres={EVERY}", {"lowres"}),
    "all-partial": (f"sockbuf={SOCKBUF},eintr={EVERY},lowres={EVERY}", {"sockbuf", "eintr", "lowres"}),
    "wait-fails": (f"waitfail={EVERY}", {"waitfail"}),
    "no-memory": ("fail=calloc", {"calloc"}),
    "no-memory-for-response": ("fail=create_calloc:1", {"calloc"}),
    "no-memory-for-its-header": ("fail=create_calloc:2", {"calloc"}),
    "no-socket-pair": ("fail=socketpair", {"socketpair"}),
    "socket-pair-above-fd-setsize": ("pair_fd=1024", {"pair_fd"}),
    "epoll-ctl-fails-1": ("fail=epoll_ctl:1", {"epoll_ctl"}),
    "epoll-ctl-fails-2": ("fail=epoll_ctl:2", {"epoll_ctl"}),
}


def seed_for(nodeid, chosen=None):
    """The seed of a case's schedule: --fault-seed if given, else one fixed
    per case, so that a rerun makes the same decisions in the same order."""
    return chosen if chosen is not None else zlib.crc32(nodeid.encode())


def environment(name, seed):
    """CONFORMANCE_FAULTS for schedule `name`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown fault schedule {name!r}; known: {', '.join(SCHEDULES)}")
    return f"{SCHEDULES[name][0]},seed={seed}"


def describe(srv):
    """One line: the faults a server runs under and how to replay them."""
    spec = srv.env.get("CONFORMANCE_FAULTS", "") if srv.env else ""
    seed = spec.rsplit("seed=", 1)[-1] if "seed=" in spec else "?"
    return f"under injected faults {spec} (replay: add -- --fault-seed {seed})"


@contextmanager
def named(srv):
    """A finding made under faults says which, and the seed that replays
    them (a last line, so that its first line, the signature, stays)."""
    try:
        yield
    except AssertionError as e:
        e.args = (f"{e}\n{describe(srv)}",) + e.args[1:]
        raise


def check_struck(srv, name, seconds=STRIKE_SECONDS):
    """Fails the case (not MHD) if the schedule never did what it names.
    The server reports a fault as it makes it, on its event channel, which
    the harness may read after the client has already seen the result."""
    missing = []
    for what in sorted(SCHEDULES[name][1]):
        try:
            srv.wait_event(lambda e, w=what: e.get("ev") == "fault" and e.get("what") == w,
                           seconds, f"'fault' event ({what})")
        except EventTimeout:
            missing.append(what)
    if missing:
        raise AssertionError(
            f"the injected fault {', '.join(missing)} never struck ({describe(srv)}): MHD made "
            f"no such call on an upgraded connection, so this case saw nothing of it")
