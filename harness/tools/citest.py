"""./conformance selftest --ci: the project's whole test command, what
.ci/run runs on a fresh clone (as root, which installs what is missing),
one step after another, each timed, stopping at the first that fails
(its exit status is the command's). Standard library only."""

import os
import subprocess
import sys
import time

from .. import ROOT

CLI = str(ROOT / "conformance")
NEWEST, TRIXIE = "1.0.10", "1.0.1"  # the newest MHD release (sid), and trixie's

# (what the step checks, its ./conformance arguments, extra environment).
# {newest} and {trixie} are the install prefixes `mhd build` printed.
STEPS = (
    ("the suite against the system MHD with a CPU hog beside it (its verdict must be an idle run's)",
     ["selftest", "--repeat", "1", "--load", "hog"], {}),
    ("the harness's own tests, the slow ones too, the report checked in headless Chromium",
     ["selftest"], {"CONFORMANCE_SLOW_TESTS": "1", "CONFORMANCE_BROWSER_TESTS": "required"}),
    (f"MHD {NEWEST}, built from Debian's source package", ["mhd", "build", NEWEST], {}),
    ("the kill matrix against it: every mutant caught by its own rule's cases",
     ["selftest", "--mutants", "--quick", "-j", "1", "--mhd", "{newest}"], {}),
    (f"MHD {NEWEST} on one core", ["selftest", "--repeat", "1", "--load", "one-core", "--mhd", "{newest}"], {}),
    (f"MHD {TRIXIE}, built from Debian's source package", ["mhd", "build", TRIXIE], {}),
    ("the real clients (U-WS-6) against the three versions",
     ["--interop", "--mhd", "/usr", "--mhd", "{trixie}", "--mhd", "{newest}", "--report", "reports/interop",
      "--", "-m", "interop"], {}),
    ("the mutants the real clients must each catch (one mode: the clients are the rows)",
     ["selftest", "--mutants", "--interop", "--mode", "epoll", "-j", "4", "--mhd", "{newest}", "--report",
      "reports/selftest/interop"], {}),
)


def run(steps=STEPS):
    """Runs the steps; returns the exit status (0, or the first failing
    step's)."""
    built = {}
    started = time.monotonic()
    for what, words, env in steps:
        words = [w.format(**built) for w in words]
        print(f"== {what}: ./conformance {' '.join(words)}", flush=True)
        began = time.monotonic()
        capture = words[:2] == ["mhd", "build"]
        proc = subprocess.run([CLI, *words], cwd=ROOT, env={**os.environ, **env},
                              stdout=subprocess.PIPE if capture else None, text=True)
        if capture:
            sys.stdout.write(proc.stdout)
            lines = proc.stdout.strip().splitlines()
            if proc.returncode == 0 and lines:
                built["newest" if words[2] == NEWEST else "trixie"] = lines[-1]
        print(f"== took {time.monotonic() - began:.0f} s (exit {proc.returncode})", flush=True)
        if proc.returncode != 0:
            print(f"selftest --ci: FAILED at '{what}' (exit {proc.returncode}); the steps before it passed",
                  flush=True)
            return proc.returncode
    print(f"selftest --ci: passed, every step, in {time.monotonic() - started:.0f} s", flush=True)
    return 0
