"""What bench and wsbench share: the reference (the reference server's echo
without MHD), warm-up, how a figure and its ratio are printed, and the
command-line options of both."""

import sys

from .. import modes
from ..server import RefServer
from . import build

REFERENCE = modes.Mode("reference", "reference")


class RawEcho(RefServer):
    """The reference server's echo without MHD (refserver --raw-echo)."""

    def command(self):
        cmd = [str(self.binary), "--raw-echo"]
        if self.tls is not None:
            cmd += ["--tls-key", str(self.tls.key), "--tls-cert", str(self.tls.cert)]
        return cmd


WARMUP = 5  # round trips before the latency is measured: the first ones pay for caches and page faults


def fmt(value, ref, complete=True, digits=1):
    text = ("" if complete else ">") + f"{value:.{digits}f}"
    if not ref:
        return text
    ratio = value / ref
    return f"{text} ({ratio:.2f}x)" if ratio >= 0.01 else f"{text} ({ratio:.1e}x)"


def parse_and_run(p, argv, run_fn, latency_help):
    """The options both benchmarks share, then run_fn(args) with the
    suite's exit statuses (3: the server cannot be built, 130: Ctrl-C)."""
    p.add_argument("--mhd", metavar="PREFIX", help="MHD install prefix (default: the system's MHD)")
    p.add_argument("--mode", metavar="MODE", action="append", default=[],
                   help="a threading mode (repeatable; default: all)")
    p.add_argument("--transport", metavar="T", action="append", default=[], choices=modes.KNOWN_TRANSPORTS,
                   help="plain or https (repeatable; default: both)")
    p.add_argument("--runs", metavar="N", type=int, default=3, help="runs per throughput figure (3)")
    p.add_argument("--latency-runs", metavar="N", type=int, default=25, help=latency_help)
    p.add_argument("--max-seconds", metavar="S", type=float, default=10.0,
                   help="a transfer not done by then counts what it moved (10)")
    p.add_argument("--json", metavar="FILE", help="also write the figures there")
    args = p.parse_args(argv)
    try:
        args.mode = [modes.lookup(m) for m in args.mode] or list(modes.MODES)
    except ValueError as e:
        p.error(str(e))
    if args.json:
        try:  # before measuring: the figures would be lost at the end
            with open(args.json, "a"):
                pass
        except OSError as e:
            print(f"{p.prog}: --json {args.json}: cannot write it ({e.strerror or e})", file=sys.stderr)
            return 2
    args.transport = args.transport or list(modes.KNOWN_TRANSPORTS)
    try:
        return run_fn(args)
    except build.BuildError as e:
        print(f"{p.prog}: cannot build the reference server: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"{p.prog}: interrupted", file=sys.stderr)
        return 130
