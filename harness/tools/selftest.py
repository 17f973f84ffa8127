"""./conformance selftest: the project's own tests (tests/), the kill
matrix (--mutants: the suite against every mutant MHD) and the flake check
(--repeat N). Standard library only."""

import argparse
import json
import os
import pathlib
import subprocess
import sys

from .. import ROOT, catalog, options, shards
from ..reports import flake, killmatrix
from . import build, citest, deps, load
from .failure import Fail
from .inputs import check_modes, checked_prefix, positive_int
from .runner import (DEFAULT_JOBS, PYTEST, Interrupted, ended_by, ensure_python, pytest_command, run_pytest,
                     split_argv)

SELFTEST_EPILOG = """\
--mutants runs the suite once per mutant MHD (servers/mutants.c, loaded into
the reference server with LD_PRELOAD): the cases of the rule each mutant
was built to break (its own rule, in mutants.c's table), or with
--all-rules every case. It writes REPORT/killmatrix.md and killmatrix.json:
per mutant its own rule and the cases that fail against it, per rule the
mutants its cases kill. A mutant that no case of its own rule kills fails
the self-test.

--repeat N runs the suite N times and names every case whose outcome varied;
a variation is accepted only in a case that can meet a race the baseline
knows (each race's attempts are summed over the runs), and every run must
exit 0. --load PROFILE (repeatable) runs the N runs under each profile in
turn: none (the machine as it is), one-core (taskset -c 0: everything on
one CPU) or hog (a busy loop per core beside the run). Writes
REPORT/flake.json; `conformance baseline REPORT/repeat/*` proposes the
races' rates from those runs.

Both take the suite's --mhd, --mode, --transport and -j; each run's
results.json, report and pytest output (pytest.log) stay in its own folder
under REPORT (default: reports/selftest). Without either, the project's own
tests (tests/) run.

Exit status: 0 passed; 1 a test failed, a mutant survived or a case was
flaky; 2 usage error or missing packages; 3 the reference server cannot be
built; 130 interrupted."""


def selftest_parser():
    p = argparse.ArgumentParser(prog="conformance selftest",
                                description="Runs the suite's own tests (tests/): baselines, results, "
                                            "the HTTP and TLS client, compare, leak figures, the kill matrix "
                                            "and flake tables, the matrix table, report.html (in headless "
                                            "Chromium, installed if missing), the catalogue copy. "
                                            "With --mutants or --repeat, checks the suite itself instead.",
                                epilog=SELFTEST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [--no-install] [-- PYTEST-ARGS...]\n"
                                      "       %(prog)s --ci\n"
                                      "       %(prog)s --mutants [NAME ...] [--quick] [--all-rules] [--interop] [--shard K/N] [--mode M] [--transport T] [--mhd P]\n"
                                      "       %(prog)s --repeat N [--load PROFILE ...] [--interop] [--mode M] [--transport T] [--mhd P]")
    options.add_no_install(p.add_argument)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--ci", action="store_true",
                      help="the project's whole test command, what .ci/run runs: each step of "
                           "harness/tools/citest.py in turn (the suite under a CPU hog, these tests, the kill "
                           "matrix, one core, the real clients against three versions), timed; stops at the "
                           "first that fails")
    what.add_argument("--mutants", nargs="*", metavar="NAME",
                      help="the kill matrix: each mutant (default: all of them) against the cases of its "
                           "own rule (--all-rules: every case)")
    what.add_argument("--repeat", type=positive_int, metavar="N",
                      help="the flake check: the whole suite N times")
    p.add_argument("--load", action="append", default=[], metavar="PROFILE",
                   help="with --repeat: run the N runs under this load profile: " + ", ".join(load.PROFILES)
                        + " (repeatable: each in turn; default: none)")
    p.add_argument("--quick", action="store_true",
                   help="with --mutants: stop each mutant's run at the first case that kills it (the "
                        "per-rule table then names only what ran)")
    p.add_argument("--shard", metavar="K/N",
                   help="with --mutants: only the K-th of N parts of the mutants (every N-th, from the "
                        "K-th, in mutants.c's order), for the jobs of a CI matrix; each part's exit "
                        "status judges its mutants")
    p.add_argument("--all-rules", action="store_true",
                   help="with --mutants: run every case against each mutant (default: only the cases of "
                        "the rules it was built to break, its own rules, which must kill it)")
    options.add_interop(p.add_argument, more_help=". Only with --mutants or --repeat; with --mutants, each mutant "
                                                  "whose own rules name U-WS-6 (all of those, when no NAME is given) must "
                                                  "then be caught by every client that can see it")
    options.add_mhd(p.add_argument)
    options.add_mode(p.add_argument)
    options.add_transport(p.add_argument)
    p.add_argument("-j", "--jobs", type=positive_int, default=DEFAULT_JOBS,
                   help=f"pytest-xdist workers per run (default: {DEFAULT_JOBS})")
    p.add_argument("--report", metavar="DIR", help="folder for the runs' reports (default: reports/selftest)")
    return p


def run_quiet(args, prefix, report, passthrough, profile="none"):
    """One suite run (under a load profile) with its output in
    REPORT/pytest.log: (status, results or None)."""
    report.mkdir(parents=True, exist_ok=True)
    results_json = report / "results.json"
    results_json.unlink(missing_ok=True)
    with open(report / "pytest.log", "w") as log, load.beside(profile):
        rc = run_pytest(load.command(profile, pytest_command(args, prefix, report, passthrough)), log=log)
    try:
        return rc, json.loads(results_json.read_text())
    except (OSError, ValueError):
        return rc, None


def flake_check(args, prefix, report):
    """--repeat N [--load ...]: the whole suite N times under each load
    profile; returns the exit status."""
    runs = []
    profiles = args.load or ["none"]
    for profile in profiles:
        for i in range(args.repeat):
            folder = report / "repeat" / (str(i + 1) if profile == "none" else f"{profile}-{i + 1}")
            rc, data = run_quiet(args, prefix, folder, [], profile)
            totals = ", ".join(f"{n} {o}" for o, n in ((data or {}).get("totals") or {}).items() if n)
            took = f" in {data['duration_s']:.0f} s" if data else ""
            print(f"run {i + 1}/{args.repeat} ({profile}): exit {rc}{took}; {totals or 'no results'}", flush=True)
            runs.append((rc, data, profile))
    table = flake.build(runs)
    report.mkdir(parents=True, exist_ok=True)
    (report / "flake.json").write_text(json.dumps(table, indent=1) + "\n")
    print(flake.text(table))
    print(f"flake check: {'passed' if flake.passed(table) else 'FAILED'} ({report / 'flake.json'})")
    return 0 if flake.passed(table) else 1


def suite_check(p, args):
    """--mutants / --repeat: the suite run many times; returns the exit status."""
    check_modes(p, args.mode)
    prefix = args.mhd or os.environ.get("CONFORMANCE_MHD") or None
    if prefix:
        prefix = checked_prefix(prefix)
    deps.ensure(prefix, allow_install=not args.no_install, interop=args.interop)
    ensure_python(sys.argv[1:])
    report = pathlib.Path(os.path.abspath(args.report)) if args.report else ROOT / "reports" / "selftest"
    args.rule, args.baseline, args.update_baseline, args.sanitize = [], None, False, False
    try:
        binary = build.ensure_server(prefix)
    except (build.BuildError, OSError) as e:
        raise Fail(f"cannot build the reference server: {e}", 3) from None
    if args.repeat:
        return flake_check(args, prefix, report)
    library = build.mutants_library(binary)
    try:
        known = build.mutant_names(binary, library)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        raise Fail(f"cannot list the mutants: {e}", 3) from None
    unknown = [n for n in args.mutants if n not in known]
    if unknown:
        p.error(f"unknown mutant(s) {', '.join(unknown)}; known: {' '.join(known)}")
    rules = catalog.load()
    stray = sorted({f"{n}: {r}" for n, m in known.items() for r in m.rules if r not in rules})
    if stray:
        raise Fail(f"servers/mutants.c names rules the catalogue does not have ({'; '.join(stray)}): "
                   f"correct the mutant's rule in its table", 3)
    # With --interop and no names: the mutants real clients must catch (the
    # others' own rules have no real-client case).
    chosen = args.mutants or [n for n, m in known.items() if not args.interop or m.clients is not None]
    if args.shard:
        k, n = args.shard
        chosen = chosen[k - 1::n]
    if any(known[n].sanitize for n in chosen):
        try:
            build.ensure_server(prefix, sanitize=True)
        except (build.BuildError, OSError) as e:
            raise Fail(f"cannot build the sanitized reference server (for the mutants only a sanitizer sees): "
                       f"{e}", 3) from None
    runs = []
    # With --all-rules --quick a run stops at whichever case fails first: that
    # it was another rule's says nothing of the mutant's own rule, so it is
    # not judged then (the own-rule runs judge it).
    own = None if args.all_rules and args.quick else {name: m.rules for name, m in known.items()}
    # --quick stops at a first kill: the other clients' rows are not judged.
    sees = None if args.quick else {name: m.clients for name, m in known.items()}
    breaks = {name: m.breaks for name, m in known.items()}
    for name in chosen:
        # A mutant only a sanitizer sees (e.g. a leak) runs with --sanitize.
        args.sanitize = known[name].sanitize
        args.rule = [] if args.all_rules else [",".join(known[name].rules)]
        rc, data = run_quiet(args, prefix, report / "mutants" / name,
                             [f"--mutant={name}", *(["--maxfail=1"] if args.quick else [])])
        runs.append((name, rc, data))
        print(killmatrix.text(killmatrix.build([runs[-1]], own, sees, breaks)), flush=True)
    table = killmatrix.build(runs, own, sees, breaks)
    report.mkdir(parents=True, exist_ok=True)
    (report / "killmatrix.json").write_text(json.dumps(table, indent=1) + "\n")
    (report / "killmatrix.md").write_text(killmatrix.markdown(table))
    survivors, astray = table["survivors"], table["astray"]
    print(f"kill matrix: {len(runs) - len(survivors)} of {len(runs)} mutants killed"
          + ("" if args.all_rules else ", each by its own rule's cases")
          + (f"; SURVIVED: {' '.join(survivors)}" if survivors else "")
          + (f"; killed only outside their own rule: {' '.join(astray)}" if astray else "")
          + (f"; missed by real clients that can see them: "
             f"{'; '.join(f'{n} ({chr(44).join(c)})' for n, c in table['missed_by_clients'].items())}"
             if table["missed_by_clients"] else "")
          + f" ({report / 'killmatrix.md'})")
    return 0 if killmatrix.passed(table) else 1


def selftest(argv):
    """./conformance selftest: the harness's own tests, or (--mutants,
    --repeat) the suite checked against mutants or for flaky cases."""
    p = selftest_parser()
    ours, passthrough = split_argv(argv)
    args = p.parse_args(ours)
    if args.ci:
        if passthrough or any(v for k, v in vars(args).items() if k not in ("ci", "jobs", "no_install")
                              and v not in (None, False, [])):
            p.error("--ci takes no other option: it is the whole test command")
        return citest.run()
    if args.quick and args.mutants is None:
        p.error("--quick goes with --mutants")
    if args.all_rules and args.mutants is None:
        p.error("--all-rules goes with --mutants")
    if args.shard is not None:
        if args.mutants is None:
            p.error("--shard goes with --mutants (a run of the suite takes --shard itself)")
        try:
            args.shard = shards.parse(args.shard)
        except shards.ShardError as e:
            p.error(str(e))
    if (args.mutants is not None or args.repeat) and passthrough:
        p.error("--mutants and --repeat take no pytest arguments")
    if args.interop and args.mutants is None and not args.repeat:
        p.error("--interop goes with --mutants or --repeat (a run of the suite takes --interop itself)")
    if args.load and not args.repeat:
        p.error("--load goes with --repeat")
    try:
        load.check(args.load)
    except ValueError as e:
        p.error(str(e))
    try:
        if args.mutants is not None or args.repeat:
            return suite_check(p, args)
        deps.ensure(None, allow_install=not args.no_install)
        deps.ensure_packages(["chromium"], "for the report.html test (it renders the page in headless Chromium)",
                             allow_install=not args.no_install)
        ensure_python(["selftest", *argv])
        report = ROOT / "reports" / "selftest"
        rc = run_pytest([*PYTEST, "tests", "--baseline=none", f"--report={report}", f"--junitxml={report / 'junit.xml'}",
                         *passthrough])
    except (Fail, Interrupted, KeyboardInterrupt) as e:
        return ended_by(e)
    print(f"conformance selftest: {'passed' if rc == 0 else f'FAILED (pytest exit status {rc})'}")
    return rc
