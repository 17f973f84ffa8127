"""Running pytest for the CLI and its commands: the command line (the
selection's options, the reports), its environment, and the wait for it.
pytest runs in a process group of its own, which Ctrl-C and SIGTERM reach.
Also: running the CLI again with Debian's Python when this one lacks the
suite's modules. (Checking the input first: inputs.py.) Standard library
only: this runs before pytest may be installed."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from .. import ROOT, options
from . import deps
from .failure import Fail, say
from .inputs import positive_int

PYTEST = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT)]
REEXEC_ENV = "CONFORMANCE_REEXEC"
JOBS_PER_CORE = 4
DEFAULT_JOBS = JOBS_PER_CORE * (os.cpu_count() or 1)
STOP_GRACE_SECONDS = 30  # for pytest, its workers and their servers to stop on SIGINT
WAIT_STEP_SECONDS = 0.5  # how often the wait for pytest looks whether a signal came


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


def clear_reports(report):
    """A run starts with no report of an earlier one in its folder: a run
    that selects nothing, or stops early, leaves no half-old folder."""
    for name in ("results.json", "summary.md", "junit.xml", "report.html", "warnings.txt"):
        (report / name).unlink(missing_ok=True)


def ensure_python(argv):
    """Re-runs this CLI with Debian's Python if this one cannot import the
    suite's Python modules (e.g. a pyenv Python that does not see them)."""
    if deps.imports_work():
        return
    need = " ".join(deps.PYTHON_MODULES.values())
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


def selection_options(args):
    """The suite's options for the selection in `args` (--rule, --mode,
    --transport), as ./conformance takes them."""
    cmd = []
    for option in ("rule", "mode", "transport"):
        for value in getattr(args, option):
            cmd += [f"--{option}", value]
    return cmd


def add_selection_arguments(parser, report_help):
    """--rule, --mode, --transport, -j, --report and --no-install, for the
    commands that run a selection of the suite (bisect, coverage)."""
    options.add_selection(parser.add_argument)
    parser.add_argument("-j", "--jobs", metavar="N", type=positive_int, default=DEFAULT_JOBS,
                        help=f"pytest-xdist workers per run (default {DEFAULT_JOBS})")
    parser.add_argument("--report", metavar="DIR", required=False, help=report_help)
    options.add_no_install(parser.add_argument)


def selection_run(args, prefix, report):
    """Runs the selection in `args` against `prefix` with no baseline
    (every case runs the same way whatever MHD does), its reports in
    `report`; returns (exit status, results.json data or None, output).
    Exit status 0 or 1 with results is a run; anything else is not."""
    cmd = [sys.executable, "-m", "harness", f"--mhd={prefix}", "--baseline=none", f"--report={report}",
           "-j", str(args.jobs), *selection_options(args)]
    proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    results = pathlib.Path(report) / "results.json"
    data = None
    if proc.returncode in (0, 1) and results.exists():
        data = json.loads(results.read_text())
    return proc.returncode, data, proc.stdout + proc.stderr


TRACEBACK = "--tb=line"


def pytest_command(args, prefix, report, passthrough):
    # Options as --opt=VALUE, and pytest.ini named: a value that is an
    # existing folder (e.g. --report /tmp/x) must not be taken for a test
    # path, or pytest looks for its configuration there.
    cmd = [*PYTEST, f"--report={report}"]
    if prefix:
        cmd.append(f"--mhd={prefix}")
    cmd += selection_options(args)
    if getattr(args, "volume", None):
        cmd.append(f"--volume={args.volume}")
    if getattr(args, "shard", None):
        cmd.append(f"--shard={args.shard}")
    if getattr(args, "interop", False):
        cmd.append("--interop")
    if args.jobs > 1:
        cmd += ["-n", str(args.jobs)]
    cmd.append(f"--junitxml={report / 'junit.xml'}")
    if args.baseline:
        cmd.append(f"--baseline={args.baseline}")
    if args.update_baseline:
        cmd.append("--update-baseline")
    if args.sanitize:
        cmd.append("--sanitize")
    if not any(a.startswith("--tb") for a in passthrough):
        # One line per failure on the console (the case's line and the
        # rule's words); the end of the run repeats each reason, and
        # report.html has the bytes and events. `-- --tb=long` for pytest's.
        cmd.append(TRACEBACK)
    return cmd + passthrough


class Interrupted(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def ended_by(error):
    """The exit status of a command that `error` ended (a Fail, an
    Interrupted or a KeyboardInterrupt), once it has said why: the Fail's
    code, 128 + the signal's number, 130 for Ctrl-C."""
    if isinstance(error, Fail):  # deps.DepsError is one
        say(str(error))
        return error.code
    say("interrupted")
    return 130 if isinstance(error, KeyboardInterrupt) else error.code


def _sigint_as_python_expects():
    """In pytest's process, before it starts: SIGINT at its default, so
    that Python turns it into KeyboardInterrupt. A harness that a shell
    started in the background (`cmd &`) has SIGINT ignored, and pytest
    would inherit that and never hear the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_pytest(cmd, log=None):
    """Runs pytest in the suite's folder and returns its exit status; its
    output goes to the open file `log` if given. pytest and its xdist
    workers run in a process group of their own: on Ctrl-C or SIGTERM (a
    CI runner's), the whole group gets SIGINT, so that every worker stops
    its case and its servers; what is still there after a grace period is
    killed (servers die with their worker). Then raises Interrupted."""
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(CONFORMANCE_CLI="1"), stdout=log,
                            stderr=subprocess.STDOUT if log else None, start_new_session=True,
                            preexec_fn=_sigint_as_python_expects)
    stop = []  # (signal, when)

    def interrupt(signum):
        stop.append((signum, time.monotonic()))
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: interrupt(signum))
    try:
        while True:
            try:
                # Short waits, so that the grace period is checked once a
                # signal came (a wait resumed after the handler would not).
                rc = proc.wait(timeout=WAIT_STEP_SECONDS)
                break
            except KeyboardInterrupt:
                if not stop:
                    interrupt(signal.SIGINT)
            except subprocess.TimeoutExpired:
                if stop and time.monotonic() - stop[0][1] > STOP_GRACE_SECONDS:
                    say(f"pytest did not stop within {STOP_GRACE_SECONDS} s of the interrupt: "
                        "killing it and its workers")
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    rc = proc.wait()
                    break
    finally:
        signal.signal(signal.SIGTERM, old_term)
    if stop:
        raise Interrupted(128 + stop[0][0])
    return rc
