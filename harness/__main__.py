"""./conformance (python3 -m harness): checks the installed libmicrohttpd
against the upgrade rule catalogue. Installs the missing Debian packages
(as root), builds the reference server, runs the pytest suite, and prints
a per-rule summary.

Imports only the standard library and the harness modules that need
nothing else: pytest may not be installed yet when this starts."""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys

import fcntl

from . import build, catalog, deadlines, deps, flake, killmatrix, matrix, mhd, modes, results, transfer

ROOT = build.ROOT
DEFAULT_REPORT = ROOT / "reports" / "latest"
PYTEST = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT)]
REEXEC_ENV = "CONFORMANCE_REEXEC"
JOBS_PER_CORE = 4
DEFAULT_JOBS = JOBS_PER_CORE * (os.cpu_count() or 1)
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

'conformance selftest' runs the project's own tests (tests/) instead;
'conformance selftest --mutants' the kill matrix, '--repeat N' the flake
check (see: conformance selftest --help);
'conformance bench' measures latency and throughput (not a test);
'conformance compare A B' says what changed between two runs' results.json
(exit 1 on a regression).

Environment: CONFORMANCE_MHD (default of --mhd), CONFORMANCE_TIMEOUT_FACTOR
(scales every deadline, e.g. 3 on slow machines; a positive number),
CONFORMANCE_VOLUME (default of --volume), CONFORMANCE_PYTHON (the
interpreter ./conformance uses).

Exit status: 0 every case behaved as the baseline says; 1 some case did not
(see summary.md); 2 usage error or missing packages; 3 the reference server
cannot be built, or a bad --mhd or --baseline; 4 pytest usage error (in the
arguments after '--'); 5 no case matched the selection; 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM): the reports then say INTERRUPTED.
A report folder is locked while a run writes it: a second run into the
same folder is refused (exit 2)."""


class Fail(Exception):
    """An expected failure: one message naming the fix, and an exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def say(text):
    print(f"conformance: {text}", file=sys.stderr, flush=True)


def make_parser():
    p = argparse.ArgumentParser(prog="conformance", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [options] [-- PYTEST-ARGS...]\n"
                                      "       %(prog)s selftest [--mutants [NAME ...] | --repeat N] ...   (see: conformance selftest --help)\n"
                                      "       %(prog)s mhd {list,build} ...   (see: %(prog)s mhd --help)\n"
                                      "       %(prog)s bench [--mhd PREFIX] ...   (see: %(prog)s bench --help)\n"
                                      "       %(prog)s compare A/results.json B/results.json [--markdown FILE]")
    p.add_argument("--mhd", metavar="PREFIX", action="append", default=[],
                   help="install prefix of the MHD to test (its ./configure --prefix, after make install); "
                        "default: the system's MHD, found by pkg-config (package libmicrohttpd-dev). "
                        "Repeat it for a matrix: one run per MHD, each with its own reference server "
                        "build, baseline and report folder (REPORT/<version>), then a rules x versions "
                        "table (REPORT/matrix.md, matrix.json)")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="folder for results.json, summary.md, junit.xml and report.html "
                        f"(default: {DEFAULT_REPORT.relative_to(ROOT)} in the suite's folder)")
    p.add_argument("--rule", metavar="PATTERN", action="append", default=[],
                   help="run only the cases checking a rule whose ID matches PATTERN: an ID "
                        "(U-EXTRA-1, or EXTRA-1), a family (U-EXTRA), a shell pattern ('U-FLAG-*'), "
                        "any case, or a comma list of them; repeatable")
    p.add_argument("--mode", metavar="MODE", action="append", default=[],
                   help="run only in this threading mode, by name or catalogue ID: "
                        + ", ".join(m.name for m in modes.MODES) + " (or M-EPOLL, ...); repeatable; "
                        "default: all")
    p.add_argument("--transport", metavar="T", action="append", default=[], choices=modes.KNOWN_TRANSPORTS,
                   help="run over this transport only: plain or https (repeatable; default: both)")
    p.add_argument("-j", "--jobs", metavar="N", type=positive_int, default=DEFAULT_JOBS,
                   help=f"parallel pytest-xdist workers (default: {DEFAULT_JOBS}, {JOBS_PER_CORE} per core: most "
                        "cases wait on the network or on a deadline; 1: no xdist, one process)")
    p.add_argument("--volume", metavar="N", type=positive_int,
                   help="multiply every transfer by N (the large transfers of U-SOCK-1/4, U-EXTRA-2, U-WS-3) "
                        "for a thorough run; default 1: each is sized to make the buffers on its path wrap")
    p.add_argument("--baseline", metavar="FILE",
                   help="baseline of known deviations to gate against (default: baselines/<MHD version>.json "
                        "if it exists); 'none': no baseline, so every deviation fails")
    p.add_argument("--update-baseline", action="store_true",
                   help="after the run, write what it saw into the baseline file, printing the diff; "
                        "review it, then commit it")
    p.add_argument("--sanitize", action="store_true",
                   help="build the reference server with AddressSanitizer and UBSan (in its own build "
                        "folder) and run the suite with it: a sanitizer report ends the server, and the "
                        "case that was running fails with the report")
    p.add_argument("--no-install", action="store_true",
                   help="only check that the Debian packages are installed; never run apt-get")
    return p


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def split_argv(argv):
    """(our arguments, pytest's): everything after the first '--' is pytest's."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def child_env(**extra):
    env = dict(os.environ, **extra)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not paths or os.path.realpath(paths[0]) != str(ROOT):
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    return env


def check_modes(parser, names):
    for m in names:
        try:
            modes.lookup(m)
        except ValueError as e:
            parser.error(f"--mode {m}: {e}")


def checked_prefix(prefix, source="--mhd"):
    """An --mhd prefix made absolute, or Fail (3) naming what is wrong with
    it, and where it came from (--mhd, or CONFORMANCE_MHD)."""
    try:
        build.check_prefix(prefix)
    except build.BuildError as e:
        raise Fail(str(e).replace("--mhd ", f"{source}=" if source != "--mhd" else "--mhd ", 1), 3) from None
    return os.path.abspath(prefix)


def writable_folder(path, what):
    """Makes sure a report folder can be written, before any work: one line
    and exit 2 if not (a traceback after the run would read as "MHD
    deviates", and lose the results)."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise Fail(f"{what} {path}: exists and is not a folder", 2)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise Fail(f"{what} {path}: cannot write there ({e.strerror or e}); give a folder you can write", 2) from None
    return path


def writable_file(path, what):
    """Makes sure a file can be written (appended to), before any work."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise Fail(f"{what} {path}: is a folder, not a file", 2)
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise Fail(f"{what} {path}: cannot write it ({e.strerror or e})", 2) from None
    return path


def check_environment():
    """The environment variables the run reads, checked once, before it."""
    for check in (deadlines.factor, transfer.volume):
        try:
            check()
        except SystemExit as e:
            raise Fail(f"{e}; unset it or fix it", 2) from None


def lock_report(report):
    """Holds REPORT/.lock for the run: two runs must not write into the
    same report folder. Returns the open lock file (keep it)."""
    lock = open(report / ".lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another run"
        raise Fail(f"--report {report}: {holder} is writing there; wait for it or give another --report", 2) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"the run of pid {os.getpid()}")
    lock.flush()
    return lock


def clear_reports(report):
    """A run starts with no report of an earlier one in its folder: a run
    that selects nothing, or stops early, leaves no half-old folder."""
    for name in ("results.json", "summary.md", "junit.xml", "report.html", "warnings.txt"):
        (report / name).unlink(missing_ok=True)


def check_args(parser, args, passthrough=()):
    check_modes(parser, args.mode)
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


def ensure_python(argv):
    """Re-runs this CLI with Debian's Python if this one cannot import the
    suite's Python modules (e.g. a pyenv Python that does not see them)."""
    if deps.imports_work():
        return
    need = "python3-pytest python3-h11 python3-pytest-xdist python3-pytest-timeout python3-websockets"
    usable = (os.path.exists(deps.DEBIAN_PYTHON)
              and os.path.realpath(deps.DEBIAN_PYTHON) != os.path.realpath(sys.executable)
              and not os.environ.get(REEXEC_ENV)
              and deps.imports_work(deps.DEBIAN_PYTHON))
    if not usable:
        raise Fail(f"{sys.executable} cannot import {', '.join(deps.MODULES)}: install {need} "
                   f"(sudo apt-get install -y {need}) and run with {deps.DEBIAN_PYTHON}, or set "
                   "CONFORMANCE_PYTHON to a Python that has them", 2)
    say(f"{sys.executable} cannot import {', '.join(deps.MODULES)}; running again with "
        f"{deps.DEBIAN_PYTHON}, which sees the Debian packages")
    sys.stdout.flush()
    env = child_env(CONFORMANCE_PYTHON=deps.DEBIAN_PYTHON, **{REEXEC_ENV: "1"})
    os.execve(deps.DEBIAN_PYTHON, [deps.DEBIAN_PYTHON, "-m", "harness", *argv], env)


def pytest_command(args, prefix, report, passthrough):
    # Options as --opt=VALUE, and pytest.ini named: a value that is an
    # existing folder (e.g. --report /tmp/x) must not be taken for a test
    # path, or pytest looks for its configuration there.
    cmd = [*PYTEST, f"--report={report}"]
    if prefix:
        cmd.append(f"--mhd={prefix}")
    for pattern in args.rule:
        cmd += ["--rule", pattern]
    for mode in args.mode:
        cmd += ["--mode", mode]
    for transport in args.transport:
        cmd += ["--transport", transport]
    if getattr(args, "volume", None):
        cmd.append(f"--volume={args.volume}")
    if args.jobs > 1:
        cmd += ["-n", str(args.jobs)]
    cmd.append(f"--junitxml={report / 'junit.xml'}")
    if args.baseline:
        cmd.append(f"--baseline={args.baseline}")
    if args.update_baseline:
        cmd.append("--update-baseline")
    if args.sanitize:
        cmd.append("--sanitize")
    return cmd + passthrough


class Interrupted(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


STOP_GRACE_SECONDS = 30  # for pytest, its workers and their servers to stop on SIGINT


def run_pytest(cmd, log=None):
    """Runs pytest in the suite's folder and returns its exit status; its
    output goes to the open file `log` if given. pytest and its xdist
    workers run in a process group of their own: on Ctrl-C or SIGTERM (a
    CI runner's), the whole group gets SIGINT, so that every worker stops
    its case and its servers; what is still there after a grace period is
    killed (servers die with their worker). Then raises Interrupted."""
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(CONFORMANCE_CLI="1"), stdout=log,
                            stderr=subprocess.STDOUT if log else None, start_new_session=True)
    stop = []

    def interrupt(signum):
        stop.append(signum)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: interrupt(signum))
    try:
        while True:
            try:
                rc = proc.wait(timeout=None if not stop else STOP_GRACE_SECONDS)
                break
            except KeyboardInterrupt:
                if not stop:
                    interrupt(signal.SIGINT)
            except subprocess.TimeoutExpired:
                say(f"pytest did not stop within {STOP_GRACE_SECONDS} s of the interrupt: killing it and its workers")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                rc = proc.wait()
                break
    finally:
        signal.signal(signal.SIGTERM, old_term)
    if stop:
        raise Interrupted(128 + stop[0])
    return rc


def print_summary(data, report, rc):
    mhd = data.get("mhd") or {}
    totals = data.get("totals") or {}
    counts = ", ".join(f"{n} {o}" for o, n in totals.items() if n) or "no cases"
    print()
    print(f"conformance: MHD {mhd.get('version')} ({mhd.get('prefix')}), "
          f"baseline: {data.get('baseline') or 'none'}")
    if data.get("mutant"):
        print(f"  MUTANT: {data['mutant']} (a self-test run: its failures are the mutant's, not MHD's)")
    print(f"  {sum(totals.values())} cases over {results.transports_text(data)}"
          + (f" (volume x{data['volume']})" if data.get("volume", 1) != 1 else "") + f": {counts}")
    for line in results.terminal_lines(data):
        print(line)
    for line in data.get("warnings", []):
        print(f"WARNING: {line}")
    print("reports:")
    for name in ("results.json", "summary.md", "junit.xml", "report.html"):
        print(f"  {report / name}")
    verdict = data.get("gate") or results.gate(data.get("cases", []), data.get("interrupted"), data.get("baseline"))
    if rc in (0, 1) or data.get("interrupted"):
        print(f"conformance: {verdict['headline']}")
    else:
        print(f"conformance: pytest exited with status {rc}; {verdict['headline']}")
    for line in results.misbehaving_lines(data):
        print(line)


SELFTEST_EPILOG = """\
--mutants runs the suite once per mutant MHD (servers/mutants.c, loaded into
the reference server with LD_PRELOAD) and writes REPORT/killmatrix.md and
killmatrix.json: per mutant the cases that fail against it, per rule the
mutants its cases kill. A mutant no case kills fails the self-test.

--repeat N runs the suite N times and names every case whose outcome varied;
a variation is accepted only in a rule the baseline marks intermittent (its
failure rate is summed over the runs). Writes REPORT/flake.json.

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
                                      "       %(prog)s --mutants [NAME ...] [--quick] [--mode M] [--transport T] [--mhd P]\n"
                                      "       %(prog)s --repeat N [--mode M] [--transport T] [--mhd P]")
    p.add_argument("--no-install", action="store_true", help="never run apt-get")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--mutants", nargs="*", metavar="NAME",
                      help="the kill matrix: the suite against each mutant (default: all of them)")
    what.add_argument("--repeat", type=positive_int, metavar="N",
                      help="the flake check: the whole suite N times")
    p.add_argument("--quick", action="store_true",
                   help="with --mutants: stop each mutant's run at the first case that kills it (the "
                        "per-rule table then names only what ran)")
    p.add_argument("--mhd", metavar="PREFIX", help="MHD install prefix (default: the system's MHD)")
    p.add_argument("--mode", action="append", default=[], metavar="MODE",
                   help="only this threading mode (repeatable; default: all)")
    p.add_argument("--transport", action="append", default=[], choices=modes.KNOWN_TRANSPORTS,
                   help="plain or https only (repeatable; default: both)")
    p.add_argument("-j", "--jobs", type=positive_int, default=DEFAULT_JOBS,
                   help=f"pytest-xdist workers per run (default: {DEFAULT_JOBS})")
    p.add_argument("--report", metavar="DIR", help="folder for the runs' reports (default: reports/selftest)")
    return p


def run_quiet(args, prefix, report, passthrough):
    """One suite run with its output in REPORT/pytest.log: (status, results or None)."""
    report.mkdir(parents=True, exist_ok=True)
    results_json = report / "results.json"
    results_json.unlink(missing_ok=True)
    with open(report / "pytest.log", "w") as log:
        rc = run_pytest(pytest_command(args, prefix, report, passthrough), log=log)
    try:
        return rc, json.loads(results_json.read_text())
    except (OSError, ValueError):
        return rc, None


def suite_check(p, args):
    """--mutants / --repeat: the suite run many times; returns the exit status."""
    check_modes(p, args.mode)
    prefix = args.mhd or os.environ.get("CONFORMANCE_MHD") or None
    if prefix:
        prefix = checked_prefix(prefix)
    deps.ensure(prefix, allow_install=not args.no_install)
    ensure_python(sys.argv[1:])
    report = pathlib.Path(os.path.abspath(args.report)) if args.report else ROOT / "reports" / "selftest"
    args.rule, args.baseline, args.update_baseline, args.sanitize = [], None, False, False
    try:
        binary = build.ensure_server(prefix)
    except (build.BuildError, OSError) as e:
        raise Fail(f"cannot build the reference server: {e}", 3) from None
    if args.repeat:
        runs = []
        for i in range(args.repeat):
            rc, data = run_quiet(args, prefix, report / "repeat" / str(i + 1), [])
            totals = ", ".join(f"{n} {o}" for o, n in ((data or {}).get("totals") or {}).items() if n)
            print(f"run {i + 1}/{args.repeat}: exit {rc}; {totals or 'no results'}", flush=True)
            runs.append((rc, data))
        table = flake.build(runs)
        report.mkdir(parents=True, exist_ok=True)
        (report / "flake.json").write_text(json.dumps(table, indent=1) + "\n")
        print(flake.text(table))
        print(f"flake check: {'passed' if flake.passed(table) else 'FAILED'} ({report / 'flake.json'})")
        return 0 if flake.passed(table) else 1
    library = binary.parent / "libconformance_mutants.so"
    try:
        known = killmatrix.mutant_names(binary, library)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        raise Fail(f"cannot list the mutants: {e}", 3) from None
    unknown = [n for n in args.mutants if n not in known]
    if unknown:
        p.error(f"unknown mutant(s) {', '.join(unknown)}; known: {' '.join(known)}")
    if any(known[n] for n in args.mutants or known):
        try:
            build.ensure_server(prefix, sanitize=True)
        except (build.BuildError, OSError) as e:
            raise Fail(f"cannot build the sanitized reference server (for the mutants only a sanitizer sees): "
                       f"{e}", 3) from None
    runs = []
    for name in args.mutants or known:
        # A mutant only a sanitizer sees (e.g. a leak) runs with --sanitize.
        args.sanitize = known[name]
        rc, data = run_quiet(args, prefix, report / "mutants" / name,
                             [f"--mutant={name}", *(["--maxfail=1"] if args.quick else [])])
        runs.append((name, rc, data))
        print(killmatrix.text(killmatrix.build([runs[-1]])), flush=True)
    table = killmatrix.build(runs)
    report.mkdir(parents=True, exist_ok=True)
    (report / "killmatrix.json").write_text(json.dumps(table, indent=1) + "\n")
    (report / "killmatrix.md").write_text(killmatrix.markdown(table))
    survivors = table["survivors"]
    print(f"kill matrix: {len(runs) - len(survivors)} of {len(runs)} mutants killed"
          + (f"; SURVIVED: {' '.join(survivors)}" if survivors else "") + f" ({report / 'killmatrix.md'})")
    return 1 if survivors else 0


def selftest(argv):
    """./conformance selftest: the harness's own tests, or (--mutants,
    --repeat) the suite checked against mutants or for flaky cases."""
    p = selftest_parser()
    ours, passthrough = split_argv(argv)
    args = p.parse_args(ours)
    if args.quick and args.mutants is None:
        p.error("--quick goes with --mutants")
    if (args.mutants is not None or args.repeat) and passthrough:
        p.error("--mutants and --repeat take no pytest arguments")
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
    except (deps.DepsError, Fail) as e:
        say(str(e))
        return e.code
    except Interrupted as e:
        say("interrupted")
        return 130 if e.code == 128 + signal.SIGINT else e.code
    print(f"conformance selftest: {'passed' if rc == 0 else f'FAILED (pytest exit status {rc})'}")
    return rc


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
        rc = run_pytest(pytest_command(args, prefix, report, passthrough))
        if rc == 5:
            raise Fail("no case matched the selection", 5)
        if not results_json.exists():
            return rc, None  # pytest stopped before the run; it said why
        try:
            data = json.loads(results_json.read_text())
        except (OSError, ValueError) as e:
            raise Fail(f"cannot read {results_json}: {e}", rc or 3) from None
    finally:
        lock.close()
    if rc == 2 and any(data["totals"].get(o) for o in ("failed", "error", "unrecorded")):
        rc = 1  # pytest says "interrupted" when -x or --maxfail stopped it: a case failed
    print_summary(data, report, rc)
    return rc, data


def check_mutant(binary, passthrough):
    """A --mutant NAME (after --) the mutants library does not know is a
    usage error, named before any case runs."""
    names = [a.split("=", 1)[1] for a in passthrough if a.startswith("--mutant=")]
    names += [passthrough[i + 1] for i, a in enumerate(passthrough[:-1]) if a == "--mutant"]
    if not names:
        return
    try:
        known = killmatrix.mutant_names(binary, binary.parent / "libconformance_mutants.so")
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
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "matrix.json").write_text(json.dumps(table, indent=1) + "\n")
    (args.report / "matrix.md").write_text(matrix.markdown(table))
    (args.report / "matrix.html").write_text(matrix.html_page(table))
    print()
    print(matrix.text(table))
    print(f"matrix: {args.report / 'matrix.md'}")
    codes = [rc for _, _, rc, _ in runs]
    return 0 if all(c == 0 for c in codes) else (1 if 1 in codes else max(codes))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["selftest"]:
        return selftest(argv[1:])
    if argv[:1] == ["mhd"]:
        return mhd.main(argv[1:])
    if argv[:1] == ["compare"]:
        from . import compare  # standard library only
        return compare.main(argv[1:])
    if argv[:1] == ["bench"]:
        from . import bench  # needs the client modules: after the dependency check
        try:
            deps.ensure(None, allow_install=True)
            ensure_python(argv)
        except (deps.DepsError, Fail) as e:
            say(str(e))
            return e.code
        return bench.main(argv[1:])
    parser = make_parser()
    ours, passthrough = split_argv(argv)
    args = parser.parse_args(ours)
    try:
        check_args(parser, args, passthrough)
        for prefix in args.mhd or [None]:
            deps.ensure(prefix, allow_install=not args.no_install)
        ensure_python(argv)
        if len(args.mhd) <= 1:
            rc, _ = run_one(args, args.mhd[0] if args.mhd else None, args.report, passthrough)
            return rc
        return run_matrix(args, passthrough)
    except deps.DepsError as e:
        say(str(e))
        return e.code
    except Fail as e:
        say(str(e))
        return e.code
    except Interrupted as e:
        say("interrupted")
        return 130 if e.code == 128 + signal.SIGINT else e.code
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
