"""What a selection holds, asked of pytest (--collect-only, under a
second) before the run starts: how many workers it is worth, and, when it
holds nothing, why. Standard library only."""

import re
import subprocess

from .. import ROOT, modes
from .failure import Fail
from .runner import PYTEST, child_env, selection_options

CASES_PER_WORKER = 10  # a worker's start (a Python, the plugin, the servers) costs more than ten short cases
_CELL = re.compile(r"\[([a-z-]+-(?:plain|https))(?:-[^\]]*)?\]")


def selective(args, passthrough):
    """Whether the run is a selection rather than the whole suite."""
    return bool(args.rule or args.mode or args.transport
                or any(a in ("-k", "-m") or a.startswith(("-k=", "-m=")) or not a.startswith("-")
                       for a in passthrough))


def collected(args, prefix, passthrough, narrow=True):
    """The pytest ids the selection holds (narrow=False: without its
    --mode and --transport); Fail when pytest cannot even collect."""
    cmd = [*PYTEST, "--collect-only", "-q", "-p", "no:junitxml"] + ([f"--mhd={prefix}"] if prefix else [])
    cmd += selection_options(args) if narrow else [o for r in args.rule for o in ("--rule", r)]
    cmd += ["--interop"] if getattr(args, "interop", False) else []
    proc = subprocess.run(cmd + list(passthrough), cwd=ROOT, env=child_env(CONFORMANCE_CLI="1"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode not in (0, 5):
        return None  # the run itself will say what is wrong, in full
    return [line.strip() for line in proc.stdout.splitlines() if "::" in line and not line.startswith(" ")]


def workers(cases, jobs):
    """At most `jobs`; one per CASES_PER_WORKER cases."""
    return max(1, min(jobs, -(-cases // CASES_PER_WORKER)))


def why_empty(args, prefix, passthrough):
    """The reason, in a line, that nothing matched."""
    if args.mode or args.transport:
        wider = collected(args, prefix, passthrough, narrow=False) or []
        cells = {tuple(m.group(1).rsplit("-", 1)) for i in wider for m in [_CELL.search(i)] if m}
        if cells:
            asked = " ".join([f"--mode {m}" for m in args.mode] + [f"--transport {t}" for t in args.transport])
            names = [m.name for m in modes.MODES if any(c[0] == m.name for c in cells)]
            over = " and ".join(t for t in modes.TRANSPORTS if any(c[1] == t for c in cells))
            return (f"no case matched the selection: {asked} leaves none of its {len(wider)} cases, which run in "
                    f"{', '.join(names)} over {over} only")
    asked = " ".join([f"--rule {r}" for r in args.rule] + list(passthrough))
    return f"no case matched the selection ({asked or 'everything'})"


def size(args, prefix, passthrough):
    """The number of workers for this run: -j, or fewer for a small
    selection. Fail (5) with the reason when the selection is empty."""
    if args.jobs <= 1 or not selective(args, passthrough):
        return args.jobs
    ids = collected(args, prefix, passthrough)
    if ids is None:
        return args.jobs
    if not ids:
        raise Fail(why_empty(args, prefix, passthrough), 5)
    return workers(len(ids), args.jobs)
