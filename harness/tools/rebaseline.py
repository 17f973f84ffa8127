"""./conformance baseline RUN [RUN ...] [--baseline FILE]: the baseline
that several runs of one MHD call for (harness/baseline.py, updated): the
deviations every run showed, each known race's rates proposed from all the
runs (runs under load included: `selftest --repeat N --load ...` leaves
one results.json per run), and a proposed race for a case that deviated
in some runs only. Prints the diff, then writes the file; review it (and
write the `workaround` of each new entry: until then the file gates no
run), then commit it. A RUN is a results.json or the report folder
holding one.

Exit status: 0 written (or unchanged); 2 a run cannot be read, the runs
are of different MHD versions, or one ran against a mutant; 3 the
baseline file cannot be read. Standard library only."""

import argparse
import glob
import pathlib
import sys

from .. import baseline
from ..reports import results


def _runs(paths):
    """[(path, results)] of the given runs; SystemExit(2) with one line on bad input."""
    out = []
    for given in paths:
        try:
            path, data = results.read(given)
        except results.Unreadable as e:
            raise SystemExit(f"conformance baseline: {e}")
        if data.get("mutant"):
            raise SystemExit(f"conformance baseline: {path} ran against the mutant {data['mutant']!r}: its "
                             "failures are the mutant's, not MHD's")
        out.append((path, data))
    versions = {(d.get("mhd") or {}).get("version") for _, d in out}
    if len(versions) != 1:
        raise SystemExit(f"conformance baseline: the runs are of different MHD versions ({', '.join(map(str, versions))})"
                         "; give runs of one version")
    return out


def main(argv):
    p = argparse.ArgumentParser(prog="conformance baseline", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="a results.json, or a report folder (shell patterns too)")
    p.add_argument("--baseline", metavar="FILE", help="the file to update (default: baselines/<MHD version>.json)")
    args = p.parse_args(argv)
    paths = [m for given in args.runs for m in (sorted(glob.glob(given)) or [given])]
    try:
        runs = _runs(paths)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    version = runs[0][1]["mhd"]["version"]
    path = pathlib.Path(args.baseline) if args.baseline else baseline.BASELINES / f"{version}.json"
    try:
        current = (baseline.Baseline.load(path, migrate=True) if path.exists()
                   else baseline.Baseline.empty(version, path))
    except baseline.BaselineError as e:
        print(f"conformance baseline: {e}", file=sys.stderr)
        return 3
    if current.version != version:
        print(f"conformance baseline: {path} is the baseline of MHD {current.version}, the runs are of {version}; "
              "give --baseline the file of that version", file=sys.stderr)
        return 2
    print(f"conformance baseline: {len(runs)} runs of MHD {version}: " + ", ".join(str(p) for p, _ in runs))
    baseline.write_updated(current, [d["cases"] for _, d in runs])
    return 0
