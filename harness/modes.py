"""The MODES table of the rule catalogue: catalogue ID and the short name used
in test ids and on the reference server's command line."""

from collections import namedtuple

Mode = namedtuple("Mode", "id name")

MODES = (
    Mode("M-SELECT", "select"),
    Mode("M-POLL", "poll"),
    Mode("M-EPOLL", "epoll"),
    Mode("M-POOL", "pool"),
    Mode("M-POOL-SELECT", "pool-select"),
    Mode("M-POOL-POLL", "pool-poll"),
    Mode("M-TPC", "tpc"),
    Mode("M-TPC-POLL", "tpc-poll"),
    Mode("M-EXT-SELECT", "ext-select"),
    Mode("M-EXT-EPOLL", "ext-epoll"),
)

THREAD_PER_CONNECTION = ("M-TPC", "M-TPC-POLL")
EXTERNAL = ("M-EXT-SELECT", "M-EXT-EPOLL")

# What a run covers by default: both transports (HTTPS: the TLS client in
# codec.py, test certificates in certs.py); --transport restricts it.
TRANSPORTS = ("plain", "https")
KNOWN_TRANSPORTS = TRANSPORTS


def servable(transports, feature_tls):
    """(the transports of `transports` an MHD can serve, a warning or None):
    HTTPS needs an MHD built with TLS (MHD_FEATURE_TLS). Like curl's test
    suite with a build that lacks a feature, the run leaves those cells out
    and says so once, rather than failing them all."""
    if feature_tls or "https" not in transports:
        return tuple(transports), None
    return (tuple(t for t in transports if t != "https"),
            "this MHD was built without TLS (MHD_FEATURE_TLS is off): its HTTPS cells are deselected")


def lookup(text):
    """A mode by catalogue ID or short name, case-insensitively."""
    for mode in MODES:
        if text.upper() == mode.id or text.lower() == mode.name:
            return mode
    known = ", ".join(f"{m.id} ({m.name})" for m in MODES)
    raise ValueError(f"unknown mode {text!r}; known: {known}")
