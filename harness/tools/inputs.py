"""Checking a command's input before any long work (the modes, an --mhd
prefix, the report folder, the environment, a count): one message naming
the fix (failure.Fail) and a documented exit status, before anything is
built or run. Standard library only: the CLI checks its input before
pytest may be installed."""

import argparse
import fcntl
import os
import pathlib

from .. import deadlines, modes, transfer
from . import build
from .failure import Fail


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


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value
