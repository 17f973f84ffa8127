"""./conformance (python3 -m harness): checks the installed libmicrohttpd
against the upgrade rule catalogue. Installs the missing Debian packages
(as root), builds the reference server, runs the pytest suite, and prints
a per-rule summary.

Imports only the standard library and the harness modules that need
nothing else: pytest may not be installed yet when this starts."""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys

from . import ROOT, catalog, modes, options, shards
from .reports import matrix, results
from .tools import build, confirm, deps, mhd, selection, selftest
from .tools.failure import Fail, say
from .tools.inputs import check_environment, check_modes, checked_prefix, lock_report, positive_int, writable_folder
from .tools.runner import (DEFAULT_JOBS, JOBS_PER_CORE, Interrupted, clear_reports, ended_by, ensure_python,
                           pytest_command, run_pytest, split_argv)

DEFAULT_REPORT = ROOT / "reports" / "latest"
DESCRIPTION = "Checks the installed libmicrohttpd against the upgrade rule catalogue (spec/upgrade-rules.md)."


EPILOG = f"""\
Before the run it installs the Debian packages the suite needs when run as
root (otherwise it names them and stops), and builds the reference server
under build/. Everything after '--' goes to pytest unchanged; it runs in
{ROOT}, so paths given there are relative to it, e.g.
  conformance -- -k flag -x
  conformance --rule 'U-FLAG-*' --mode epoll -j 1
  conformance --mhd /opt/mhd-1.0 --baseline none
  conformance -- --mutant extra-dropped   (a mutant MHD: servers/mutants.c)
  conformance --rule U-FAULT -- --fault-seed 7   (another schedule of the injected faults: servers/faults.c)

'conformance selftest' runs the project's own tests (tests/) instead;
'conformance selftest --mutants' the kill matrix, '--repeat N' the flake
check, '--repeat N --load one-core --load hog' the same under load (see:
conformance selftest --help);
'conformance bench' measures latency and throughput (not a test);
'conformance compare A B' says what changed between two runs' results.json
(exit 1 on a regression);
'conformance merge SHARD...' joins the reports of a run's shards (--shard
K/N) into the run's reports, gate and exit status;
'conformance baseline RUN...' writes the baseline that several runs of one
MHD call for (a known race's rates from all of them);
'conformance bisect --git DIR GOOD BAD --rule ID' finds the MHD commit that
changed the verdicts of a rule's cells (see: conformance bisect --help);
'conformance coverage VERSION' reports which lines and branches of MHD's
upgrade code a selection reaches (see: conformance coverage --help).

Environment: CONFORMANCE_MHD (default of --mhd), CONFORMANCE_TIMEOUT_FACTOR
(scales every deadline, e.g. 3 for sanitizer builds; a positive number; a
wait for bytes is judged by a quiet period, so a slow machine needs none),
CONFORMANCE_VOLUME (default of --volume), CONFORMANCE_PYTHON (the
interpreter ./conformance uses).

Exit status: 0 every case behaved as the baseline says (a known race judged
with a false-alarm rate of at most 0.1 % a run); 1 some case did not
(see summary.md); 2 usage error or missing packages; 3 the reference server
cannot be built, or a bad --mhd or --baseline; 4 pytest usage error (in the
arguments after '--'); 5 no case matched the selection; 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM): the reports then say INTERRUPTED.
A report folder is locked while a run writes it: a second run into the
same folder is refused (exit 2)."""


def make_parser():
    p = argparse.ArgumentParser(prog="conformance", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [options] [-- PYTEST-ARGS...]\n"
                                      "       %(prog)s selftest [--mutants [NAME ...] | --repeat N] ...   (see: conformance selftest --help)\n"
                                      "       %(prog)s mhd {list,build} ...   (see: %(prog)s mhd --help)\n"
                                      "       %(prog)s bench [--mhd PREFIX] ...   (see: %(prog)s bench --help)\n"
                                      "       %(prog)s compare A/results.json B/results.json [--markdown FILE]\n"
                                      "       %(prog)s merge SHARD [SHARD ...] [--report DIR]   (see: %(prog)s merge --help)\n"
                                      "       %(prog)s matrix RUN [RUN ...] [--report DIR]   (see: %(prog)s matrix --help)\n"
                                      "       %(prog)s baseline RUN [RUN ...] [--baseline FILE]   (see: %(prog)s baseline --help)\n"
                                      "       %(prog)s bisect --git DIR GOOD BAD --rule ID ...   (see: %(prog)s bisect --help)\n"
                                      "       %(prog)s coverage VERSION|--git DIR|--tarball FILE ...   (see: %(prog)s coverage --help)")
    options.add_mhd(p.add_argument, action="append", default=[],
                    more_help=". Repeat it for a matrix: one run per MHD, each with its own reference server "
                              "build, baseline and report folder (REPORT/<version>), then a rules x versions "
                              "table (REPORT/matrix.md, matrix.json)")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="folder for results.json, summary.md, junit.xml and report.html "
                        f"(default: {DEFAULT_REPORT.relative_to(ROOT)} in the suite's folder)")
    options.add_selection(p.add_argument)
    p.add_argument("-j", "--jobs", metavar="N", type=positive_int, default=DEFAULT_JOBS,
                   help=f"parallel pytest-xdist workers (default: {DEFAULT_JOBS}, {JOBS_PER_CORE} per core: most "
                        "cases wait on the network or on a deadline; 1: no xdist, one process); a selection gets "
                        "one per 10 of its cases, at most N")
    options.add_run(p.add_argument,
                    interop_help=". Their Debian packages are installed like the others. Add '-- -m interop' for "
                                 "them alone, '-- -k chromium' for one client")
    p.add_argument("--confirm-failures", metavar="N", type=positive_int,
                   help="after a red run, run the cases that did not behave N times again (each rerun in "
                        "REPORT/confirm/K/) and show how often each failed again; the gate stays the run's")
    options.add_no_install(p.add_argument)
    return p


def check_args(parser, args, passthrough=()):
    check_modes(parser, args.mode)
    if args.shard:
        try:
            shards.parse(args.shard)
        except shards.ShardError as e:
            parser.error(str(e))
    if args.update_baseline and args.baseline == "none":
        parser.error("--update-baseline needs a baseline file to write; --baseline none has none")
    if args.update_baseline and any(a == "--mutant" or a.startswith("--mutant=") for a in passthrough):
        parser.error("--update-baseline refuses a run against a mutant: its failures are the mutant's, not MHD's")
    check_environment()
    source = "--mhd"
    if not args.mhd and os.environ.get("CONFORMANCE_MHD"):
        args.mhd, source = [os.environ["CONFORMANCE_MHD"]], "CONFORMANCE_MHD"
    args.mhd = [checked_prefix(prefix, source) for prefix in args.mhd]
    rules = catalog.load()
    patterns, unmatched = catalog.rule_patterns(args.rule, rules)
    for item in unmatched:
        say(f"--rule {item}: matches no rule of the catalogue; {catalog.id_hint(rules)}")
    if args.rule and len(unmatched) == len(patterns):
        raise Fail("no --rule matches a rule of the catalogue", 5)
    args.rule = patterns
    if len(args.mhd) > 1 and args.baseline and args.baseline != "none":
        parser.error("with several --mhd, each run uses its own version's baseline: give none, or 'none'")
    if args.baseline and args.baseline != "none":
        if not os.path.isfile(args.baseline):
            raise Fail(f"--baseline {args.baseline}: no such file (give an existing baseline file, or 'none')", 3)
        args.baseline = os.path.abspath(args.baseline)
    args.report = writable_folder(os.path.abspath(args.report) if args.report else DEFAULT_REPORT, "--report")


def run_one(args, prefix, report, passthrough):
    """Builds the reference server for one MHD and runs the suite against
    it; returns (pytest's exit status, the results or None)."""
    try:
        binary = build.ensure_server(prefix, args.sanitize)
    except build.BuildError as e:
        raise Fail(f"cannot build the reference server: {e}", 3) from None
    except OSError as e:
        raise Fail(f"cannot build the reference server: {e} (the build folder {build.BUILD_ROOT} "
                   "must be writable by this user)", 3) from None
    say(f"reference server: {binary}")
    check_mutant(binary, passthrough)

    report = writable_folder(report, "--report")
    lock = lock_report(report)
    try:
        clear_reports(report)
        results_json = report / "results.json"
        sized = argparse.Namespace(**{**vars(args), "jobs": selection.size(args, prefix, passthrough)})
        if sized.jobs != args.jobs:
            say(f"{sized.jobs} worker{'s' if sized.jobs != 1 else ''} for this selection (-j {args.jobs}: at most)")
        try:
            rc = run_pytest(pytest_command(sized, prefix, report, passthrough))
        except Interrupted:
            if not results_json.exists():
                # Interrupted before pytest's session was under way (its
                # workers starting): no report of its own, so these say it.
                mhd_info = build.server_version(binary)
                results.write_interrupted(report, {"version": mhd_info["mhd_version"], "prefix": prefix or "/usr"},
                                          catalog.load(), tuple(args.transport) or modes.TRANSPORTS)
            raise
        if rc == 5:
            raise Fail("no case matched the selection", 5)
        if not results_json.exists():
            return rc, None  # pytest stopped before the run; it said why
        try:
            data = json.loads(results_json.read_text())
        except (OSError, ValueError) as e:
            raise Fail(f"cannot read {results_json}: {e}", rc or 3) from None
        ids = confirm.failed_ids(data) if args.confirm_failures and not data.get("interrupted") else []
        if ids:  # still holding the report folder: the reruns write into it
            say(f"confirming: the {len(ids)} case(s) that did not behave, {args.confirm_failures} time(s) again "
                f"({report / 'confirm'})")
            data["confirmation"] = confirm.rerun(args, prefix, report, against(passthrough), ids,
                                                 args.confirm_failures)
            results.write(report, data, catalog.load())
    finally:
        lock.close()
    if rc == 2 and any(data["totals"].get(o) for o in ("failed", "error", "unrecorded")):
        rc = 1  # pytest says "interrupted" when -x or --maxfail stopped it: a case failed
    results.print_summary(data, report, rc, rerun=rerun_command(args, prefix, passthrough))
    return rc, data


# pytest options after -- that say what a run is run against, not what it selects.
RUN_AGAINST = ("--mutant", "--fault-seed")


def against(passthrough):
    """The options after -- that say what a run is run against."""
    given = list(passthrough)
    return [f"{opt}={given[i + 1]}" if arg == opt and i + 1 < len(given) else arg
            for i, arg in enumerate(given) for opt in RUN_AGAINST if arg == opt or arg.startswith(opt + "=")]


def rerun_command(args, prefix, passthrough=()):
    """How this run was started, without its selection: the head of a
    command that runs some of its cases again (the cases follow its --)."""
    words = ["./conformance"]
    if prefix:
        words.append(f"--mhd {shlex.quote(str(prefix))}")
    if args.baseline:
        words.append(f"--baseline {shlex.quote(args.baseline)}")
    words += [flag for flag, on in (("--interop", args.interop), ("--sanitize", args.sanitize)) if on]
    run_against = [shlex.quote(a) for a in against(passthrough)]
    return " ".join(words + (["--", *run_against] if run_against else []))


def check_mutant(binary, passthrough):
    """A --mutant NAME (after --) the mutants library does not know is a
    usage error, named before any case runs."""
    names = [a.split("=", 1)[1] for a in passthrough if a.startswith("--mutant=")]
    names += [passthrough[i + 1] for i, a in enumerate(passthrough[:-1]) if a == "--mutant"]
    if not names:
        return
    try:
        known = build.mutant_names(binary, build.mutants_library(binary))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        raise Fail(f"cannot list the mutants: {e}", 3) from None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Fail(f"--mutant {' '.join(unknown)}: no such mutant; known: {' '.join(known)}", 2)


def run_matrix(args, passthrough):
    """One run per --mhd, each in REPORT/<version>, then the rules x
    versions table. Exit status: the worst of the runs (1 before 0)."""
    runs = []
    for prefix in args.mhd:
        try:
            version = build.server_version(build.ensure_server(prefix, args.sanitize))["mhd_version"]
        except build.BuildError as e:
            raise Fail(f"cannot build the reference server for {prefix}: {e}", 3) from None
        label = version if version not in [r[0] for r in runs] else f"{version}-{len(runs) + 1}"
        say(f"matrix: MHD {version} from {prefix} -> {args.report / label}")
        rc, data = run_one(args, prefix, args.report / label, passthrough)
        runs.append((label, prefix, rc, data))
    table = matrix.build([(label, prefix, rc, data) for label, prefix, rc, data in runs])
    matrix.write(args.report, table)
    print()
    print(matrix.text(table))
    print(f"matrix: {args.report / 'matrix.md'}")
    codes = [rc for _, _, rc, _ in runs]
    return 0 if all(c == 0 for c in codes) else (1 if 1 in codes else max(codes))


def _terminated(signum, frame):
    """SIGTERM outside a pytest run (building, checking): end as an
    interrupted run does, 143."""
    raise Interrupted(128 + signum)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["selftest"]:
        signal.signal(signal.SIGTERM, _terminated)  # run_pytest takes it over while pytest runs
        return selftest.selftest(argv[1:])
    if argv[:1] == ["mhd"]:
        return mhd.main(argv[1:])
    if argv[:1] == ["compare"]:
        from .reports import compare  # standard library only
        return compare.main(argv[1:])
    if argv[:1] == ["matrix"]:
        from .reports import matrix  # standard library only
        return matrix.main(argv[1:])
    if argv[:1] == ["merge"]:
        from .tools import merge  # standard library only
        return merge.main(argv[1:])
    if argv[:1] == ["baseline"]:
        from .tools import rebaseline  # standard library only
        return rebaseline.main(argv[1:])
    if argv[:1] in (["bisect"], ["coverage"], ["bench"]):
        # Their modules import the suite's Python modules (h11, pytest, ...):
        # imported only once the check has found them, or named what is missing.
        try:
            deps.ensure(None, allow_install="--no-install" not in argv)
            ensure_python(argv)
        except Fail as e:
            return ended_by(e)
        if argv[0] == "bisect":
            from .tools import bisect
            return bisect.main(argv[1:])
        if argv[0] == "coverage":
            from .tools import coverage
            return coverage.main(argv[1:])
        from .tools import bench
        return bench.main(argv[1:])
    signal.signal(signal.SIGTERM, _terminated)  # run_pytest takes it over while pytest runs
    parser = make_parser()
    ours, passthrough = split_argv(argv)
    args = parser.parse_args(ours)
    try:
        check_args(parser, args, passthrough)
        for prefix in args.mhd or [None]:
            deps.ensure(prefix, allow_install=not args.no_install, interop=args.interop)
        ensure_python(argv)
        if len(args.mhd) <= 1:
            rc, _ = run_one(args, args.mhd[0] if args.mhd else None, args.report, passthrough)
            return rc
        return run_matrix(args, passthrough)
    except (Fail, Interrupted, KeyboardInterrupt) as e:
        return ended_by(e)


if __name__ == "__main__":
    sys.exit(main())
