"""Every ./conformance command on a machine without the suite's Python
modules: one message naming the Debian packages and the apt-get command,
exit 2 (README, "Run the suite"), never a traceback from an import made
before the dependency check.

A fresh machine is simulated in a child Python: the modules of
deps.MODULES are blocked (None in sys.modules makes their import fail as
an absent module's does), dpkg reports python3-h11 as not installed, and
the process is not root (so nothing is installed)."""

import subprocess
import sys

import pytest

from harness import ROOT
from harness.tools import deps

FRESH_MACHINE = """
import os, sys
for name in {modules!r}:
    sys.modules[name] = None
os.geteuid = lambda: 1000
from harness.tools import deps
deps.missing = lambda pkgs: [p for p in pkgs if p == "python3-h11"]
deps.imports_work = lambda python=None: False
from harness.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run_on_fresh_machine(*argv):
    return subprocess.run([sys.executable, "-c", FRESH_MACHINE.format(modules=deps.MODULES), *argv], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [["bench"], ["bench", "--help"], ["bisect", "--help"], ["coverage", "--help"],
                                  ["selftest"], ["--rule", "U-EXTRA-1", "--report", "{tmp}"]],
                         ids=lambda argv: " ".join(argv[:2]))
def test_a_command_that_needs_the_modules_names_the_package_to_install(argv, tmp_path):
    proc = run_on_fresh_machine(*[a.format(tmp=tmp_path) for a in argv])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert "missing Debian packages: python3-h11" in proc.stderr
    assert "sudo apt-get install -y python3-h11" in proc.stderr


@pytest.mark.parametrize("command", ["mhd", "compare", "matrix", "merge", "baseline"])
def test_a_command_of_the_standard_library_runs_without_the_modules(command):
    proc = run_on_fresh_machine(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
