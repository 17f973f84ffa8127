"""./conformance bisect: the first commit of an MHD git repository at which
the verdicts of a selection of cells (rule x mode x transport) change.

    ./conformance bisect --git DIR GOOD BAD --rule U-QUEUE-2 [--mode M]
        [--transport T] [--runs N] [--report DIR] [-j N]

The verdicts at GOOD are the reference: a step whose selected cells say
the same is "good", one where any of them says otherwise is "bad" (so the
answer is the commit that changed them, whichever way). Each step's commit
is built in a prefix of its own (build/mhd/git-COMMIT, cached) and only the
selection runs against it, with no baseline. A commit that does not build
is skipped. git bisect runs in a worktree of its own under build/bisect/:
the user's checkout, its index and its HEAD are left alone. With --runs N
(for an intermittent rule) each step runs N times, and a cell deviates if
it deviated in any of them.

Writes REPORT/bisect.json (every step: commit, subject, build, verdicts,
mark) and prints the first commit, its subject and the verdicts before and
after. Exit status: 0 found; 1 no single commit (only skipped ones left);
2 usage (or GOOD and BAD agree); 3 GOOD or BAD does not build. Standard
library only."""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess

from .. import ROOT, outcome
from . import build, mhd
from .failure import Fail, say
from .inputs import check_modes, positive_int, writable_folder
from .runner import add_selection_arguments, selection_run

BISECT_ROOT = build.BUILD_ROOT / "bisect"
DEFAULT_REPORT = ROOT / "reports" / "bisect"


def cells(results, rules):
    """{"RULE cell": verdict} of a run's results.json data, for the cases of
    `rules` (outcome.cell_verdicts)."""
    return outcome.cell_verdicts(results.get("cases", []), set(rules))


def combine(runs):
    """One verdict per cell over several runs of a step: deviates if it
    deviated in any, else what the runs' cases together say."""
    seen = {}
    for verdicts in runs:
        for cell, verdict in verdicts.items():
            seen.setdefault(cell, []).append({"verdict": verdict, "outcome": "error" if verdict == "error" else ""})
    return {c: outcome.cell_verdict(v) for c, v in sorted(seen.items())}


def mark(reference, verdicts):
    """good: the decided cells say what they said at GOOD; bad otherwise."""
    undecided = ("untested", "error")
    both = [c for c in reference if c in verdicts and not {reference[c], verdicts[c]} & set(undecided)]
    return "good" if all(reference[c] == verdicts[c] for c in both) else "bad"


def changed(before, after):
    return {c: (before.get(c), after.get(c)) for c in sorted(set(before) | set(after))
            if before.get(c) != after.get(c)}


class Bisection:
    def __init__(self, args):
        self.args = args
        self.repo = pathlib.Path(args.git).resolve()
        self.report = writable_folder(pathlib.Path(args.report).resolve(), "--report")
        self.rules = None
        self.steps = []

    def build(self, commit):
        tree, meta = mhd.source_of_git(self.repo, commit)
        return mhd.build_source(tree, meta, allow_install=not self.args.no_install)

    def run_selection(self, prefix, commit):
        """The selection's verdicts against `prefix` (self.args.runs runs)."""
        runs = []
        for i in range(self.args.runs):
            report = self.report / "runs" / commit[:12] / str(i + 1)
            shutil.rmtree(report, ignore_errors=True)
            rc, data, output = selection_run(self.args, prefix, report)
            if data is None:
                raise Fail(f"the selection did not run against {prefix} (exit status {rc}):\n"
                           + "\n".join(output.strip().splitlines()[-15:]), 3)
            if self.rules is None:
                self.rules = sorted({r for c in data["cases"] for r in c["rules"]})
            runs.append(cells(data, self.rules))
        return combine(runs)

    def step(self, commit, reference=None):
        subject = mhd._git(self.repo, "log", "-1", "--format=%s", commit)
        entry = {"commit": commit, "subject": subject}
        try:
            prefix = self.build(commit)
        except mhd.MhdError as e:
            entry.update(build="failed", error=str(e).splitlines()[0])
            self.steps.append(entry)
            say(f"{commit[:12]} {subject}: does not build, skipped")
            return entry
        entry.update(build="ok", prefix=str(prefix), verdicts=self.run_selection(prefix, commit))
        if reference is not None:
            entry["mark"] = mark(reference, entry["verdicts"])
        self.steps.append(entry)
        say(f"{commit[:12]} {subject}: " + (entry.get("mark") or "reference") + "; "
            + ", ".join(f"{c}: {v}" for c, v in entry["verdicts"].items()))
        return entry

    def git(self, worktree, *args):
        return subprocess.run(["git", "-C", str(worktree), *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)

    def run(self):
        good, bad = (mhd.git_commit(self.repo, r) for r in (self.args.good, self.args.bad))
        if good == bad:
            raise Fail("GOOD and BAD are the same commit", 2)
        first = self.step(good)
        if first["build"] != "ok":
            raise Fail(f"GOOD ({good[:12]}) does not build: {first['error']}", 3)
        last = self.step(bad, first["verdicts"])
        if last["build"] != "ok":
            raise Fail(f"BAD ({bad[:12]}) does not build: {last['error']}", 3)
        if last["mark"] == "good":
            raise Fail(f"GOOD and BAD give the same verdicts ({', '.join(f'{c}: {v}' for c, v in first['verdicts'].items())}): "
                       "nothing to bisect; choose other commits or cells", 2)
        worktree = BISECT_ROOT / f"wt-{os.getpid()}"
        shutil.rmtree(worktree, ignore_errors=True)
        BISECT_ROOT.mkdir(parents=True, exist_ok=True)
        added = subprocess.run(["git", "-C", str(self.repo), "worktree", "add", "--detach", str(worktree), bad],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise Fail(f"git worktree add failed: {added.stderr.strip()}", 3)
        try:
            out = self.git(worktree, "bisect", "start", bad, good)
            found = None
            while True:
                text = out.stdout + out.stderr
                m = re.search(r"^([0-9a-f]{40}) is the first bad commit", text, re.M)
                if m:
                    found = m.group(1)
                    break
                if "only 'skip'ped commits left" in text:
                    left = re.findall(r"^([0-9a-f]{40})$", text, re.M)
                    return self.finish(None, first["verdicts"], left)
                if out.returncode != 0:
                    raise Fail(f"git bisect failed: {text.strip()}", 3)
                commit = self.git(worktree, "rev-parse", "HEAD").stdout.strip()
                entry = self.step(commit, first["verdicts"])
                out = self.git(worktree, "bisect", "skip" if entry["build"] != "ok" else entry["mark"])
            return self.finish(found, first["verdicts"], [])
        finally:
            self.git(worktree, "bisect", "reset")
            subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
            subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], capture_output=True)

    def finish(self, found, reference, candidates):
        after = next((s["verdicts"] for s in self.steps if s["commit"] == found and "verdicts" in s), None)
        if found and after is None:  # git named the first bad commit without our testing it: BAD itself
            after = self.steps[1]["verdicts"]
        out = {"repository": str(self.repo), "good": self.steps[0]["commit"], "bad": self.steps[1]["commit"],
               "selection": {"rule": self.args.rule, "mode": self.args.mode, "transport": self.args.transport,
                             "runs": self.args.runs},
               "first_commit": found, "candidates": candidates, "steps": self.steps}
        if found:
            out["subject"] = mhd._git(self.repo, "log", "-1", "--format=%s", found)
            out["changed"] = {c: {"before": b, "after": a} for c, (b, a) in changed(reference, after).items()}
        self.report.mkdir(parents=True, exist_ok=True)
        (self.report / "bisect.json").write_text(json.dumps(out, indent=1) + "\n")
        print()
        if not found:
            print(f"bisect: no single commit: only commits that do not build are left: {' '.join(candidates)}")
            print(f"bisect: {self.report / 'bisect.json'}")
            return 1
        print(f"bisect: first commit with other verdicts: {found}")
        print(f"  {out['subject']}")
        for cell, v in out["changed"].items():
            print(f"  {cell}: {v['before']} -> {v['after']}")
        print(f"bisect: {len(self.steps)} builds and runs; {self.report / 'bisect.json'}")
        return 0


def make_parser():
    p = argparse.ArgumentParser(prog="conformance bisect", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--git", metavar="DIR", required=True, help="the MHD git repository")
    p.add_argument("good", metavar="GOOD", help="a commit whose verdicts are the reference")
    p.add_argument("bad", metavar="BAD", help="a later commit whose verdicts differ")
    p.add_argument("--runs", metavar="N", type=positive_int, default=1,
                   help="runs per step, for an intermittent rule: a cell deviates if it did in any (1)")
    add_selection_arguments(p, f"where bisect.json and each run's reports go (default "
                               f"{DEFAULT_REPORT.relative_to(ROOT)})")
    return p


def main(argv):
    p = make_parser()
    args = p.parse_args(argv)
    if not args.rule:
        p.error("--rule is required: the rules whose cells are compared")
    check_modes(p, args.mode)
    args.report = args.report or str(DEFAULT_REPORT)
    try:
        return Bisection(args).run()
    except Fail as e:  # mhd's errors are Fail too
        say(str(e), "bisect")
        return e.code
    except KeyboardInterrupt:
        say("interrupted", "bisect")
        return 130
