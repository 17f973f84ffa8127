"""The options that say what a run tests: which MHD (--mhd) and which of
its cases (--rule, --mode, --transport). Declared once, here, for
./conformance, its commands and the pytest plugin: each `add` is an
argparse parser's add_argument or a pytest option group's addoption, which
take the same keywords. Standard library only: the CLI declares them
before pytest may be installed."""

from . import modes

MHD_HELP = ("install prefix of the MHD to test (its ./configure --prefix, after make install); default: the "
            "system's MHD, found by pkg-config (package libmicrohttpd-dev)")
RULE_HELP = ("run only the cases checking a rule whose ID matches PATTERN: an ID (U-EXTRA-1, or EXTRA-1), a "
             "family (U-EXTRA), a shell pattern ('U-FLAG-*'), any case, or a comma list of them; repeatable")
MODE_HELP = ("run only in this threading mode, by name or catalogue ID: " + ", ".join(m.name for m in modes.MODES)
             + " (or M-EPOLL, ...); repeatable; default: all")
TRANSPORT_HELP = "run over this transport only: plain or https (repeatable; default: both)"


def add_mhd(add, more_help="", **how):
    """--mhd PREFIX; `how`: how a command takes it (e.g. action="append"
    for ./conformance's matrix), `more_help`: what that adds."""
    add("--mhd", metavar="PREFIX", help=MHD_HELP + more_help, **how)


def add_rule(add):
    add("--rule", metavar="PATTERN", action="append", default=[], help=RULE_HELP)


def add_mode(add):
    add("--mode", metavar="MODE", action="append", default=[], help=MODE_HELP)


def add_transport(add):
    add("--transport", metavar="T", action="append", default=[], choices=modes.KNOWN_TRANSPORTS, help=TRANSPORT_HELP)


def add_selection(add):
    """--rule, --mode and --transport, in that order."""
    add_rule(add)
    add_mode(add)
    add_transport(add)
