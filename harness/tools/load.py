"""Load profiles for the stability check (`selftest --repeat N --load
...`): the machines a newcomer or a CI runner may have, made here.

  none      the machine as it is
  one-core  the whole run (pytest, its workers, every reference server)
            on one CPU: taskset -c 0, as a 1-core runner
  hog       one busy loop per core beside the run, at the same priority:
            a loaded CI runner

A hog is a process of our own (no package needed) that spins until its
parent is gone, so that nothing outlives a run that was killed. Standard
library only."""

import contextlib
import os
import shutil
import subprocess
import sys

PROFILES = ("none", "one-core", "hog")
# Spins while the process that started it lives (checked every few million
# iterations: a busy loop, not a wait).
_HOG = "import os\np = os.getppid()\nwhile os.getppid() == p:\n    for _ in range(2_000_000): pass\n"


def check(profiles):
    """The profiles as given, or ValueError naming what is wrong."""
    for name in profiles:
        if name not in PROFILES:
            raise ValueError(f"--load {name}: not a load profile; give one of {', '.join(PROFILES)}")
        if name == "one-core" and not shutil.which("taskset"):
            raise ValueError("--load one-core needs taskset (Debian's util-linux)")
    return list(profiles)


def command(profile, cmd):
    """`cmd` as it runs under `profile`."""
    return ["taskset", "-c", "0", *cmd] if profile == "one-core" else list(cmd)


@contextlib.contextmanager
def beside(profile):
    """Runs what the profile puts beside the run (the hogs) for the time of
    the block."""
    hogs = []
    if profile == "hog":
        hogs = [subprocess.Popen([sys.executable, "-c", _HOG], stdin=subprocess.DEVNULL)
                for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
