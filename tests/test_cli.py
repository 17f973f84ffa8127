"""./conformance as a user meets it: run as a subprocess, bad input gets one
clear line and the documented exit status before any long work; a signal
leaves nothing running."""

import fcntl
import json
import os
import pathlib
import select
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from harness import deadlines

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = [str(ROOT / "conformance")]
QUICK = 60  # seconds: none of these may get as far as a run


def run(*args, env=None, timeout=QUICK):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFORMANCE_")}
    clean.update(env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=clean, cwd=ROOT)


def one_clear_line(proc, *words):
    """The failure is explained on one line, without a traceback, and the
    line names the fix (the words given)."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "nothing was said"
    for word in words:
        assert word in out, (word, out)
    assert not any(line.startswith("===") for line in lines), f"pytest started: {out}"


@pytest.mark.parametrize("variable, value", [("CONFORMANCE_TIMEOUT_FACTOR", "abc"),
                                             ("CONFORMANCE_TIMEOUT_FACTOR", "-1"),
                                             ("CONFORMANCE_TIMEOUT_FACTOR", "0"),
                                             ("CONFORMANCE_TIMEOUT_FACTOR", "nan"),
                                             ("CONFORMANCE_TIMEOUT_FACTOR", "inf"),
                                             ("CONFORMANCE_TIMEOUT_FACTOR", "1e9"),
                                             ("CONFORMANCE_VOLUME", "0"),
                                             ("CONFORMANCE_VOLUME", "lots")])
def test_bad_environment_value_is_a_usage_error(variable, value):
    proc = run("--rule", "U-API-1", env={variable: value})
    assert proc.returncode == 2
    one_clear_line(proc, variable)


def test_report_folder_that_cannot_be_written_is_refused_first(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    for report in (a_file, a_file / "below"):
        proc = run("--rule", "U-API-1", "--report", str(report))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        one_clear_line(proc, "--report", str(report))


def test_a_report_folder_in_use_is_refused(tmp_path):
    (tmp_path / ".lock").write_text("")
    with open(tmp_path / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("the run of pid 1")
        held.flush()
        proc = run("--rule", "U-API-1", "--report", str(tmp_path), timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_clear_line(proc, "is writing there", "another --report")


def test_broken_prefix_names_its_source(tmp_path):
    proc = run("--mhd", str(tmp_path / "nothing"))
    assert proc.returncode == 3
    one_clear_line(proc, "--mhd")
    proc = run(env={"CONFORMANCE_MHD": str(tmp_path / "nothing")})
    assert proc.returncode == 3
    one_clear_line(proc, "CONFORMANCE_MHD")


def test_rule_that_matches_nothing_says_what_ids_look_like():
    proc = run("--rule", "U-NOPE-1")
    assert proc.returncode == 5
    one_clear_line(proc, "U-NOPE-1", "rule IDs look like U-EXTRA-1")


def test_a_selection_that_holds_nothing_says_why_at_once():
    # U-CB-6 runs only in the thread-per-connection modes: said before any
    # worker starts.
    proc = run("--rule", "U-CB-6", "--mode", "epoll", timeout=300)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "--mode epoll leaves none of its 4 cases, which run in tpc, tpc-poll over plain and https only" in (
        proc.stdout + proc.stderr)
    assert "gw0" not in proc.stdout, "pytest-xdist workers were started for nothing"


def test_a_small_selection_gets_few_workers():
    from harness.tools import selection
    assert [selection.workers(n, 8) for n in (1, 10, 11, 40, 500)] == [1, 1, 2, 4, 8]
    assert selection.workers(500, 2) == 2


def test_unknown_mode_is_a_usage_error():
    proc = run("--mode", "kqueue")
    assert proc.returncode == 2
    one_clear_line(proc, "--mode kqueue")


def test_unknown_mutant_is_a_usage_error():
    proc = run("--rule", "U-API-1", "--", "--mutant", "no-such-mutant", timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_clear_line(proc, "no-such-mutant", "known:")


def test_compare_markdown_that_cannot_be_written(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    proc = run("compare", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--markdown", str(tmp_path / "x" / "y"))
    assert proc.returncode == 2
    one_clear_line(proc, "--markdown")


def test_bench_json_that_cannot_be_written(tmp_path):
    proc = run("bench", "--json", str(tmp_path / "x" / "y"))
    assert proc.returncode == 2
    one_clear_line(proc, "--json")


def test_bench_svg_that_cannot_be_written(tmp_path):
    proc = run("bench", "--ws", "--svg", str(tmp_path / "x" / "y.svg"))
    assert proc.returncode == 2
    one_clear_line(proc, "--svg")


@pytest.mark.parametrize("args, words", [
    (["selftest", "--load", "hog"], ["--load goes with --repeat"]),
    (["selftest", "--repeat", "1", "--load", "two-cores"], ["not a load profile", "one-core"]),
    (["selftest", "--shard", "1/4"], ["--shard goes with --mutants"]),
    (["selftest", "--mutants", "--shard", "5/4"], ["--shard 5/4", "1 <= K <= N"]),
    (["selftest", "--all-rules"], ["--all-rules goes with --mutants"]),
    (["baseline", "/nonexistent/results.json"], ["cannot read /nonexistent/results.json"]),
])
def test_bad_stability_and_baseline_arguments_are_refused(args, words):
    proc = run(*args)
    assert proc.returncode == 2
    one_clear_line(proc, *words)


def test_baseline_refuses_a_mutant_run_and_runs_of_two_versions(tmp_path):
    def results(name, version, mutant=None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"mhd": {"version": version}, "mutant": mutant,
                                                         "cases": []}))
        return str(folder)
    proc = run("baseline", results("m", "1.0.10", "close-noop"))
    assert proc.returncode == 2
    one_clear_line(proc, "ran against the mutant 'close-noop'")
    proc = run("baseline", results("a", "1.0.10"), results("b", "0.9.75"))
    assert proc.returncode == 2
    one_clear_line(proc, "different MHD versions")


def test_help_names_the_exit_statuses():
    proc = run("--help")
    assert proc.returncode == 0
    assert "Exit status" in proc.stdout and "CONFORMANCE_TIMEOUT_FACTOR" in proc.stdout


def _descendants(pid):
    """The pids of every process below `pid`, from /proc."""
    children = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _command(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_gone(pids, seconds):
    """Waits, with a deadline, until none of `pids` exists (pidfds become
    readable when their process ends)."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass
    try:
        end = time.monotonic() + seconds
        pending = list(fds)
        while pending and time.monotonic() < end:
            ready, _, _ = select.select(pending, [], [], end - time.monotonic())
            pending = [fd for fd in pending if fd not in ready]
        return [p for p in pids if os.path.exists(f"/proc/{p}") and "refserver" in _command(p) or
                os.path.exists(f"/proc/{p}") and "pytest" in _command(p)]
    finally:
        for fd in fds:
            os.close(fd)


def _as_background_job():
    """What a shell does to a command it starts with `&`: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _signalled_run(args, started, signum=signal.SIGINT, **popen):
    """Runs ./conformance ARGS (no CONFORMANCE_* of ours) and sends it
    `signum` once started(proc) has returned; returns (its exit status,
    its output, what started returned). Never leaves it running."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFORMANCE_")}
    proc = subprocess.Popen([*CLI, *args], cwd=ROOT, env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)
    try:
        seen = started(proc)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=deadlines.scaled(60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, seen


def _wait_below(proc, *words):
    """Waits (with a deadline, while `proc` runs) for a process below it
    whose command line holds all of `words`; returns their pids."""
    end = time.monotonic() + deadlines.scaled(300)
    while time.monotonic() < end and proc.poll() is None:
        found = [p for p in _descendants(proc.pid) if all(w in _command(p) for w in words)]
        if found:
            return found
        select.select([], [], [], 0.05)  # the next look at /proc
    return []


@pytest.mark.parametrize("signum, code, background", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False),
                                                      (signal.SIGTERM, 143, True)],
                         ids=["SIGTERM", "SIGINT", "SIGTERM-background"])
def test_a_signal_ends_the_run_and_every_server(tmp_path, signum, code, background):
    def servers_up(proc):
        assert _wait_below(proc, "refserver", "--mode"), "no reference server started"
        return _descendants(proc.pid)  # what must be gone once the run has ended

    rc, out, below = _signalled_run(["--rule", "U-LOAD-1,U-ACT-1", "-j", "2", "--baseline", "none",
                                     "--report", str(tmp_path)], servers_up, signum,
                                    preexec_fn=_as_background_job if background else None)
    assert rc == code, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    left = _wait_gone(below, deadlines.scaled(10))
    assert not left, "still running after the run ended: " + "; ".join(_command(p) for p in left)


def test_an_interrupted_run_says_so_in_every_report(tmp_path):
    def first_verdict(proc):  # the run is under way
        for line in proc.stdout:
            if " PASSED" in line or " FAILED" in line:
                break

    rc, out, _ = _signalled_run(["--rule", "U-RESP,U-ACT-1", "-j", "1", "--baseline", "none",
                                 "--report", str(tmp_path), "--", "-v"], first_verdict)
    assert rc == 130, out[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["interrupted"] is True and data["gate"]["passed"] is False
    assert data["gate"]["headline"].startswith("INTERRUPTED")
    assert "INTERRUPTED" in (tmp_path / "summary.md").read_text().splitlines()[2]
    page = (tmp_path / "report.html").read_text()
    assert 'id="interrupted"' in page
    assert 'name="interrupted" value="true"' in (tmp_path / "junit.xml").read_text()


def test_a_run_interrupted_before_its_first_case_ended_writes_every_report(tmp_path):
    # The interrupt as soon as pytest has started its workers: before any
    # case can end (U-STOP-1's many cases: two workers).
    rc, out, _ = _signalled_run(["--rule", "U-STOP-1", "-j", "2", "--baseline", "none", "--report", str(tmp_path)],
                                lambda proc: _wait_below(proc, "exec(eval(sys.stdin.readline()))"))
    assert rc == 130, out[-3000:]
    assert (tmp_path / "results.json").exists(), out[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["interrupted"] is True and data["gate"]["headline"].startswith("INTERRUPTED"), data["gate"]
    assert not [c for c in data["cases"] if c["outcome"] == "passed"], "a case had ended: not the point"
    assert "INTERRUPTED" in (tmp_path / "summary.md").read_text().splitlines()[2]
    assert 'id="interrupted"' in (tmp_path / "report.html").read_text()
    assert 'name="interrupted" value="true"' in (tmp_path / "junit.xml").read_text()


def test_a_failure_is_reported_once_with_its_rules_and_the_servers_events(tmp_path):
    proc = run("--rule", "U-EXTRA-1", "--mode", "epoll", "--transport", "plain", "--report", str(tmp_path),
               "--", "--mutant", "extra-dropped", timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # In terms of the rule, without the harness's frames.
    assert "MHD passed extra_in_size 0" in proc.stdout
    assert "harness/client.py" not in proc.stdout and "harness/checks.py" not in proc.stdout
    assert [line for line in proc.stdout.splitlines() if line.startswith("  test_")] == [
        line for line in proc.stdout.splitlines()
        if line.startswith("  test_eager_bytes_arrive_in_extra_in[epoll-plain] [U-EXTRA-1] new deviation: ")]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("name").startswith("upgrade-conformance MHD ") and suite.get("name").endswith(
        " mutant extra-dropped")  # a dashboard names the run after the MHD under test
    cases = suite.findall("testcase")
    assert len(cases) == 1 and suite.get("failures") == "1" and suite.get("errors") == "0"
    props = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert props["rules"] == "U-EXTRA-1"
    text = cases[0].find("failure").text
    assert "U-EXTRA-1: failed (assertion)" in text and "'ev': 'upgraded'" in text


def test_an_empty_timeout_factor_is_unset(monkeypatch):
    from harness import deadlines
    monkeypatch.setenv(deadlines.FACTOR_ENV, "")
    assert deadlines.factor() == 1


def test_another_versions_baseline_is_refused_for_update_and_warned_of(tmp_path):
    # The system MHD with a baseline of another version: the run warns of
    # the mismatch; --update-baseline refuses to write it, and leaves it as it was.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": 3, "mhd_version": "0.0.1", "deviations": {}, "races": {}}))
    before = other.read_text()
    proc = run("--rule", "U-API-3", "-j", "1", "--report", str(tmp_path / "r"), "--baseline", str(other),
               "--update-baseline", timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "--update-baseline refuses to run" in proc.stdout + proc.stderr
    assert other.read_text() == before
    proc = run("--rule", "U-API-3", "-j", "1", "--report", str(tmp_path / "r"), "--baseline", str(other),
               timeout=300)
    assert "MHD 0.0.1's, and this run tests" in proc.stdout
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["warnings"]
    # What the run was, beside what it found.
    prov = data["provenance"]
    assert prov["baseline_version"] == "0.0.1" and prov["jobs"] == 1 and prov["timeout_factor"] == 1
    assert prov["selection"]["rule"] == ["U-API-3"] and prov["cores_usable"] >= 1
    assert len(prov["load_average_at_start"]) == 3 and len(prov["suite_commit"] or "x" * 40) == 40


def test_confirm_failures_reruns_what_did_not_behave_and_keeps_the_gate(tmp_path):
    proc = run("--rule", "U-EXTRA-1", "--mode", "epoll", "--transport", "plain", "--confirm-failures", "2",
               "--report", str(tmp_path), "--", "--mutant", "extra-dropped", timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    case = "cases/test_extra.py::test_eager_bytes_arrive_in_extra_in[epoll-plain]"
    assert data["confirmation"] == {"reruns": 2, "cases": {case: {"failed": 2, "reruns": 2}}}
    assert data["gate"]["passed"] is False
    assert "confirmed: test_eager_bytes_arrive_in_extra_in[epoll-plain]: failed again in all 2 reruns" in proc.stdout
    assert "failed again in all 2 reruns" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "confirm" / "2" / "results.json").exists()


def test_confirmation_words():
    from harness.reports.confirmation import confirmation_lines
    said = confirmation_lines({"reruns": 3, "cases": {"c::a": {"failed": 0, "reruns": 3},
                                                      "c::b": {"failed": 1, "reruns": 3},
                                                      "c::c": {"failed": 0, "reruns": 0}}})
    assert said == ["a: behaved in all 3 reruns: it came once", "b: failed again in 1 of 3 reruns",
                    "c: no rerun finished"]
