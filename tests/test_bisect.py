"""./conformance bisect: how a step's verdicts are judged (fast), and, with
CONFORMANCE_SLOW_TESTS=1, a real bisection in a git repository made here
from Debian's source packages of three MHD versions (one commit each, and
one that does not build between 1.0.1 and 1.0.10): U-QUEUE-2 deviates in
0.9.75 and conforms from 1.0.1 on, so the first commit with other
verdicts is 1.0.1's."""

import json
import os
import pathlib
import re
import subprocess

import pytest

from harness.tools import bisect, mhd

ROOT = bisect.ROOT
SLOW = os.environ.get("CONFORMANCE_SLOW_TESTS") == "1"


def case(rule, mode, transport, verdict):
    return {"rules": [rule], "mode": mode, "transport": transport, "verdict": verdict, "outcome": "passed"}


def test_cells_take_the_worst_verdict_of_their_cases():
    data = {"cases": [case("U-QUEUE-2", "M-EPOLL", "plain", "conforms"),
                      case("U-QUEUE-2", "M-EPOLL", "plain", "deviates"),
                      case("U-QUEUE-2", "M-TPC", "https", "untested"),
                      case("U-ACT-1", "M-EPOLL", "plain", "deviates")]}
    assert bisect.cells(data, ["U-QUEUE-2"]) == {"U-QUEUE-2 epoll-plain": "deviates",
                                                  "U-QUEUE-2 tpc-https": "untested"}


def test_a_cell_deviates_over_several_runs_if_it_did_once():
    runs = [{"a": "conforms", "b": "untested"}, {"a": "deviates", "b": "conforms"}]
    assert bisect.combine(runs) == {"a": "deviates", "b": "conforms"}


def test_a_step_is_good_when_its_decided_cells_agree_with_good():
    reference = {"a": "deviates", "b": "conforms"}
    assert bisect.mark(reference, {"a": "deviates", "b": "conforms"}) == "good"
    assert bisect.mark(reference, {"a": "deviates", "b": "untested"}) == "good"  # undecided: no evidence
    assert bisect.mark(reference, {"a": "conforms", "b": "conforms"}) == "bad"
    assert bisect.changed(reference, {"a": "conforms", "b": "conforms"}) == {"a": ("deviates", "conforms")}


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.mark.skipif(not SLOW, reason="builds three MHDs: set CONFORMANCE_SLOW_TESTS=1 (CI does)")
def test_bisect_finds_the_commit_that_changed_a_rule(tmp_path):
    repo = tmp_path / "mhd"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = {}
    for version in ("0.9.75", "1.0.1", "broken", "1.0.10"):
        if version == "broken":  # 1.0.1 with a compile error: bisect must skip it
            with open(repo / "src" / "microhttpd" / "response.c", "a") as f:
                f.write("\n#error this commit does not build\n")
        else:
            tree = mhd.fetch_source(mhd.resolve(version)[1])
            git(repo, "rm", "-rq", "--ignore-unmatch", ".")
            subprocess.run(["cp", "-a", f"{tree}/.", str(repo)], check=True)
        git(repo, "add", "-A", "-f")
        git(repo, "commit", "-qm", f"MHD {version}")
        commits[version] = git(repo, "rev-parse", "HEAD")
    checkout = git(repo, "rev-parse", "HEAD")
    report = tmp_path / "report"
    proc = subprocess.run([str(ROOT / "conformance"), "bisect", "--git", str(repo), commits["0.9.75"],
                           commits["1.0.10"], "--rule", "U-QUEUE-2", "--mode", "epoll", "--transport", "plain",
                           "--report", str(report), "-j", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = json.loads((report / "bisect.json").read_text())
    assert found["first_commit"] == commits["1.0.1"]
    assert found["subject"] == "MHD 1.0.1"
    assert found["changed"] == {"U-QUEUE-2 epoll-plain": {"before": "deviates", "after": "conforms"}}
    assert f"first commit with other verdicts: {commits['1.0.1']}" in proc.stdout
    for step in found["steps"]:
        assert (step["build"] == "failed") == (step["commit"] == commits["broken"]), step
    # The user's checkout is as it was, and no worktree is left.
    assert git(repo, "rev-parse", "HEAD") == checkout
    assert git(repo, "worktree", "list").count("\n") == 0


@pytest.mark.skipif(not SLOW, reason="builds MHD: set CONFORMANCE_SLOW_TESTS=1 (CI does)")
def test_a_commit_that_does_not_build_says_so_and_keeps_its_log(tmp_path):
    repo = tmp_path / "mhd"
    repo.mkdir()
    git(repo, "init", "-q")
    tree = mhd.fetch_source(mhd.resolve("1.0.10")[1])
    subprocess.run(["cp", "-a", f"{tree}/.", str(repo)], check=True)
    with open(repo / "src" / "microhttpd" / "daemon.c", "a") as f:
        f.write("\n#error this commit does not build\n")
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-qm", "broken")
    proc = subprocess.run([str(ROOT / "conformance"), "mhd", "build", "--git", str(repo)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "building MHD git-" in proc.stderr and "'make -j" in proc.stderr, proc.stderr
    log = re.search(r"logs are kept: (\S+\.log)", proc.stderr).group(1)
    assert "this commit does not build" in pathlib.Path(log).read_text()
    assert "Traceback" not in proc.stderr
