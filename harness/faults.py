"""What the system may do under MHD (servers/faults.c, rules U-FAULT-*):
the named schedules a case asks for, the environment that sets them, and
the seed that replays them. A fault is not a mutant: every result it makes,
a POSIX system may give."""

import zlib
from contextlib import contextmanager

# SO_SNDBUF/SO_RCVBUF asked for the upgraded TCP socket and the socket pair:
# Linux doubles it and keeps at least 4608 bytes (TCP) or 2304 (AF_UNIX), so
# that a few KiB already come back in short counts and EAGAIN.
SOCKBUF = 2048
# One call in EVERY fails, of those the schedule names.
EVERY = 3

# name -> CONFORMANCE_FAULTS without the seed
SCHEDULES = {
    "small-buffers": f"sockbuf={SOCKBUF}",
    "eintr": f"eintr={EVERY}",
    "enobufs": f"lowres={EVERY}",
    "all-partial": f"sockbuf={SOCKBUF},eintr={EVERY},lowres={EVERY}",
    "no-memory": "fail=calloc",
    "no-socket-pair": "fail=socketpair",
    "socket-pair-above-fd-setsize": "pair_fd=1024",
    "epoll-ctl-fails-1": "fail=epoll_ctl:1",
    "epoll-ctl-fails-2": "fail=epoll_ctl:2",
}
# What each schedule must be seen to do ("fault" events' `what`) before a
# case may judge MHD under it: a fault that never struck tested nothing.
STRIKES = {
    "small-buffers": {"sockbuf"},
    "eintr": {"eintr"},
    "enobufs": {"lowres"},
    "all-partial": {"sockbuf", "eintr", "lowres"},
    "no-memory": {"calloc"},
    "no-socket-pair": {"socketpair"},
    "socket-pair-above-fd-setsize": {"pair_fd"},
    "epoll-ctl-fails-1": {"epoll_ctl"},
    "epoll-ctl-fails-2": {"epoll_ctl"},
}


def seed_for(nodeid, chosen=None):
    """The seed of a case's schedule: --fault-seed if given, else one fixed
    per case, so that a rerun makes the same decisions in the same order."""
    return chosen if chosen is not None else zlib.crc32(nodeid.encode())


def environment(name, seed):
    """CONFORMANCE_FAULTS for schedule `name`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown fault schedule {name!r}; known: {', '.join(SCHEDULES)}")
    return f"{SCHEDULES[name]},seed={seed}"


def describe(srv):
    """One line: the faults a server runs under and how to replay them."""
    spec = srv.env.get("CONFORMANCE_FAULTS", "") if srv.env else ""
    seed = spec.rsplit("seed=", 1)[-1] if "seed=" in spec else "?"
    return f"under injected faults {spec} (replay: add -- --fault-seed {seed})"


def struck(srv, name):
    """Which of the schedule's faults the server reported doing."""
    return {e.get("what") for e in srv.events() if e.get("ev") == "fault"} & STRIKES[name]


@contextmanager
def named(srv):
    """A finding made under faults says which, and the seed that replays
    them (a last line, so that its first line, the signature, stays)."""
    try:
        yield
    except AssertionError as e:
        e.args = (f"{e}\n{describe(srv)}",) + e.args[1:]
        raise


def check_struck(srv, name):
    """Fails the case (not MHD) if the schedule never did what it names."""
    missing = STRIKES[name] - struck(srv, name)
    if missing:
        raise AssertionError(
            f"the injected fault {', '.join(sorted(missing))} never struck ({describe(srv)}): MHD made "
            f"no such call on an upgraded connection, so this case saw nothing of it")
