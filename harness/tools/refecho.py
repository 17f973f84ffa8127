"""What bench and wsbench share: the reference (the reference server's echo
without MHD), warm-up, taking MHD's and the reference's samples in turn,
how a figure, its spread and its comparison are printed, and the
command-line options of both."""

import json
import pathlib
import statistics
import sys
import tempfile

from .. import certs, modes, options
from ..server import EventTimeout, RefServer
from . import benchplot, build

REFERENCE = modes.Mode("reference", "reference")


class RawEcho(RefServer):
    """The reference server's echo without MHD (refserver --raw-echo)."""

    def command(self):
        cmd = [str(self.binary), "--raw-echo"]
        if self.tls is not None:
            cmd += ["--tls-key", str(self.tls.key), "--tls-cert", str(self.tls.cert)]
        return cmd


WARMUP = 5  # round trips before the latency is measured: the first ones pay for caches and page faults


def taken_in_turn(measures, runs):
    """`runs` samples of each measure, taken in turn (A B, then B A), so
    that a change of the machine's load hits MHD and its reference alike:
    measured one after the other, a loaded minute made the reference look
    slower than MHD (issue 24). Returns one list of samples per measure."""
    samples = [[] for _ in measures]
    for i in range(runs):
        order = list(zip(measures, samples))
        for measure, out in order if i % 2 == 0 else reversed(order):
            out.append(measure())
    return samples


def settle(server, rids):
    """Waits (at most 10 s in all) until MHD has closed the connections
    `rids` and their events are read: MHD's clean-up and the harness's
    event reader (a thread: it takes the GIL from the client's loop) then
    run before the next sample, not in the reference's, where they made
    latencies of 3 to 7 ms out of 0.06. A close MHD takes longer over
    (0.9.75 forwarding TLS at 1 MB/s) is not waited out."""
    pending = set(rids)

    def closed(event):
        if event.get("ev") == "conn_closed":
            pending.discard(event.get("rid"))
        return not pending
    try:
        server.wait_event(closed, 10, "the end of the connections")
    except EventTimeout:
        pass


def number(value, digits=None):
    """A figure in plain notation (never 1.3e-03): three significant digits
    below 1000, whole numbers above."""
    if digits is None:
        digits = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:.{digits}f}"


def spread(samples, digits=None):
    """The median and how far the samples spread: the middle half (IQR)
    of 8 samples or more, else all of them (min-max)."""
    median = number(statistics.median(samples), digits)
    if len(samples) >= 8:
        q1, _, q3 = statistics.quantiles(samples, n=4)
        return f"{median} (IQR {number(q1, digits)}-{number(q3, digits)})"
    return f"{median} (min-max {number(min(samples), digits)}-{number(max(samples), digits)})"


def versus(mhd, ref, higher_is_better):
    """MHD's median next to the reference's, in words: '770x slower',
    '1.06x faster'."""
    if mhd == ref:
        return "same"
    if not mhd or not ref:
        return "nothing moved" if higher_is_better and not mhd else "-"
    ratio = mhd / ref if higher_is_better else ref / mhd
    return f"{number(ratio if ratio > 1 else 1 / ratio)}x {'faster' if ratio > 1 else 'slower'}"


def mib(nbytes):
    return f"{nbytes / (1 << 20):.{0 if nbytes % (1 << 20) == 0 else 1}f} MiB"


def moved(got, wanted, max_seconds):
    """What the transfers moved each way: per run (the median), whether the
    cap cut them short, and in all."""
    per_run = statistics.median(got)
    capped = [g for g in got if g < wanted]
    text = f"{mib(per_run)} per run" if not capped else f"{mib(per_run)} of {mib(wanted)} per run"
    if capped:
        text += f" ({len(capped)} of {len(got)} cut at {max_seconds:g} s)"
    return f"{text}, {mib(sum(got))} in all"


SPREAD_NOTE = "Each figure: the median, then its spread (IQR: the middle half of the samples; min-max: all of them)."


def begin(args, latency_what):
    """The server built for args.mhd: (binary, its MHD version, the figures'
    common part), and how much each figure takes, in words."""
    binary = build.ensure_server(args.mhd)
    version = build.server_version(binary)["mhd_version"]
    figures = {"mhd_version": version, "mhd": args.mhd, "runs": args.runs, "latency_runs": args.latency_runs,
               "max_seconds": args.max_seconds, "results": []}
    amounts = (f"{args.latency_runs} {latency_what} (after {WARMUP} to warm up) and {args.runs} "
               f"run{'s' if args.runs != 1 else ''} per figure; cap {args.max_seconds:g} s per transfer")
    return binary, version, figures, amounts


def references(binary, args):
    """Per transport of args: (transport, its test PKI or None, the
    reference echo, running until the caller moves on)."""
    with tempfile.TemporaryDirectory() as tmp:
        for transport in args.transport:
            pki = certs.TestPKI(pathlib.Path(tmp)) if transport == "https" else None
            reference = RawEcho(binary, REFERENCE, transport, tls=pki).start()
            try:
                yield transport, pki, reference
            finally:
                reference.stop()


def keep(figures, transport, mode, mine, ref):
    """One measurement of MHD and the reference, for --json."""
    figures["results"].append(dict(mine, transport=transport, mode=mode.id, reference=ref))


def plot_row(mode, mine, ref, key):
    """A plot's row: the samples of MB/s (`key`) of both sides."""
    return {"label": mode.name, "mhd": mine[key], "reference": ref[key]}


def table_head(width):
    """The heading of a mode's figures; `width`: of the figure column."""
    return f"  {'figure':<{width}} {'MHD':<28} {'reference':<28} {'MHD vs reference':<17} moved each way by MHD"


def figure_line(label, width, mine, ref, key, higher_is_better, moved_text=""):
    """One figure (`key`: its median's name in a side's figures, the
    samples under key_samples) of MHD and of the reference, compared."""
    return (f"  {label:<{width}} {spread(mine[key + '_samples']):<28} {spread(ref[key + '_samples']):<28} "
            f"{versus(mine[key], ref[key], higher_is_better=higher_is_better):<17} {moved_text}").rstrip()


def write_outputs(args, figures, panels, title):
    """The figures to --json, the plot to --svg (both optional)."""
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
        print(f"\nfigures (every sample) in {args.json}")
    if args.svg:
        pathlib.Path(args.svg).write_text(benchplot.render(title, panels))
        print(f"plot of MB/s per mode, MHD against the reference, in {args.svg}")


def parse_and_run(p, argv, run_fn, latency_help):
    """The options both benchmarks share, then run_fn(args) with the
    suite's exit statuses (3: the server cannot be built, 130: Ctrl-C)."""
    options.add_mhd(p.add_argument)
    options.add_mode(p.add_argument)
    options.add_transport(p.add_argument)
    p.add_argument("--runs", metavar="N", type=int, default=3, help="runs per throughput figure (3)")
    p.add_argument("--latency-runs", metavar="N", type=int, default=25, help=latency_help)
    p.add_argument("--max-seconds", metavar="S", type=float, default=10.0,
                   help="a transfer not done by then counts what it moved (10)")
    p.add_argument("--json", metavar="FILE", help="also write the figures (every sample) there")
    p.add_argument("--svg", metavar="FILE",
                   help="plot MB/s per mode, MHD against the reference, there (default: next to --json, as .svg)")
    args = p.parse_args(argv)
    if args.json and not args.svg:
        args.svg = str(pathlib.Path(args.json).with_suffix(".svg"))
    try:
        args.mode = [modes.lookup(m) for m in args.mode] or list(modes.MODES)
    except ValueError as e:
        p.error(str(e))
    for option, path in (("--json", args.json), ("--svg", args.svg)):
        try:  # before measuring: the figures would be lost at the end
            if path:
                with open(path, "a"):
                    pass
        except OSError as e:
            print(f"{p.prog}: {option} {path}: cannot write it ({e.strerror or e})", file=sys.stderr)
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
