"""The options that say what a run tests: which MHD (--mhd) and which of
its cases (--rule, --mode, --transport); and those that say how a run of
the suite goes (--volume, --baseline, --update-baseline, --sanitize,
--shard, --interop), which ./conformance hands on to the pytest plugin as
they are, and --no-install. Declared once, here, for ./conformance, its
commands and the pytest plugin: each `add` is an argparse parser's
add_argument or a pytest option group's addoption, which take the same
keywords; `more_help` is what one of them says besides. Standard library
only: the CLI declares them before pytest may be installed."""

from . import modes
from .tools.inputs import positive_int

MHD_HELP = ("install prefix of the MHD to test (its ./configure --prefix, after make install); default: the "
            "system's MHD, found by pkg-config (package libmicrohttpd-dev)")
RULE_HELP = ("run only the cases checking a rule whose ID matches PATTERN: an ID (U-EXTRA-1, or EXTRA-1), a "
             "family (U-EXTRA), a shell pattern ('U-FLAG-*'), any case, or a comma list of them; repeatable")
MODE_HELP = ("run only in this threading mode, by name or catalogue ID: " + ", ".join(m.name for m in modes.MODES)
             + " (or M-EPOLL, ...); repeatable; default: all")
TRANSPORT_HELP = "run over this transport only: plain or https (repeatable; default: both)"
VOLUME_HELP = ("multiply every transfer by N (the large transfers of U-SOCK-1/4, U-EXTRA-2, U-WS-3) for a thorough "
               "run; default 1: each is sized to make the buffers on its path wrap")
BASELINE_HELP = ("baseline of known deviations to gate against (default: baselines/<MHD version>.json if it exists); "
                 "'none': no baseline, so every deviation fails")
UPDATE_BASELINE_HELP = ("after the run, write what it saw into the baseline file, printing the diff; review it, then "
                        "commit it")
SANITIZE_HELP = ("build the reference server with AddressSanitizer and UBSan (in its own build folder) and run the "
                 "suite with it: a sanitizer report ends the server, and the case that was running fails with the "
                 "report")
SHARD_HELP = ("run only the K-th of N parts of the selection (a CI matrix job each; the parts are balanced by the "
              "durations of the last run against that MHD version, kept in build/durations/); then 'conformance "
              "merge' joins the N report folders into the run's reports and gate")
INTEROP_HELP = ("also run the real-client cases of U-WS-6 (Chromium, Node's ws, aiohttp, wsproto, websockets against "
                "the reference server's WebSocket endpoint); they add minutes, so the default run leaves them out")
NO_INSTALL_HELP = "only check that the Debian packages are installed; never run apt-get"


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


def add_run(add, volume_help="", interop_help=""):
    """How a run of the suite goes: --volume, --baseline,
    --update-baseline, --sanitize, --shard and --interop, in that order."""
    add("--volume", metavar="N", type=positive_int, help=VOLUME_HELP + volume_help)
    add("--baseline", metavar="FILE", help=BASELINE_HELP)
    add("--update-baseline", action="store_true", help=UPDATE_BASELINE_HELP)
    add("--sanitize", action="store_true", help=SANITIZE_HELP)
    add("--shard", metavar="K/N", help=SHARD_HELP)
    add_interop(add, interop_help)


def add_interop(add, more_help=""):
    add("--interop", action="store_true", help=INTEROP_HELP + more_help)


def add_no_install(add):
    add("--no-install", action="store_true", help=NO_INSTALL_HELP)
