"""./conformance coverage: which functions count as MHD's upgrade code and
how their lines and branches are counted (on a gcovr JSON report, fast);
with CONFORMANCE_SLOW_TESTS=1, a --coverage build of MHD 1.0.10 and a small
selection, read back."""

import json
import os
import subprocess

import pytest

from harness.tools import coverage

SLOW = os.environ.get("CONFORMANCE_SLOW_TESTS") == "1"


def line(n, count, branches=()):
    return {"line_number": n, "count": count, "gcovr/noncode": False,
            "branches": [{"count": b} for b in branches]}


REPORT = {"files": [
    {"file": "src/microhttpd/response.c",
     "functions": [{"name": "MHD_create_response_from_buffer", "lineno": 10},
                   {"name": "MHD_upgrade_action", "lineno": 20},
                   {"name": "MHD_destroy_response", "lineno": 30}],
     "lines": [line(11, 5), line(21, 3, (1, 0)), line(22, 0), line(23, 0), line(25, 1), line(31, 7)]},
    {"file": "src/microhttpd/upgrade_process.c",
     "functions": [{"name": "MHD_upgraded_connection_mark_app_closed_", "lineno": 5}],
     "lines": [line(6, 0, (0, 0))]},
    {"file": "src/microhttpd/mhd_str.c", "functions": [{"name": "upgrade_looking_name", "lineno": 1}],
     "lines": [line(2, 9)]},
]}


def test_upgrade_functions_are_named_or_in_the_upgrade_file():
    found = {(f["file"], f["function"]) for f in coverage.upgrade_functions(REPORT)}
    assert found == {("response.c", "MHD_upgrade_action"),
                     ("upgrade_process.c", "MHD_upgraded_connection_mark_app_closed_")}


def test_lines_and_branches_are_counted_per_function():
    fn = next(f for f in coverage.upgrade_functions(REPORT) if f["function"] == "MHD_upgrade_action")
    assert (fn["first"], fn["last"]) == (20, 29)
    assert (fn["lines"], fn["lines_hit"], fn["branches"], fn["branches_hit"]) == (4, 2, 2, 1)
    assert fn["missed"] == "22-23"
    assert coverage.ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


def test_the_table_puts_sources_side_by_side():
    fns = coverage.upgrade_functions(REPORT)
    md = coverage.markdown({"suite": fns, "MHD's tests": fns}, "t")
    row = next(r for r in md.splitlines() if "MHD_upgrade_action" in r)
    assert row == "| response.c | `MHD_upgrade_action` | 2/4 (50%) | 1/2 (50%) | 2/4 (50%) | 1/2 (50%) | 22-23 | - |"


def test_the_table_says_which_lines_only_the_second_source_reached():
    suite = coverage.upgrade_functions(REPORT)
    other = json.loads(json.dumps(REPORT))
    other["files"][0]["lines"][2]["count"] = 4  # line 22
    md = coverage.markdown({"suite": suite, "MHD's tests": coverage.upgrade_functions(other)}, "t")
    row = next(r for r in md.splitlines() if "MHD_upgrade_action" in r)
    assert row.endswith("| 22-23 | 22 |")


def test_mhd_upgrade_tests_are_the_programs_its_makefile_builds(tmp_path):
    makefile = tmp_path / "src" / "microhttpd" / "Makefile"
    makefile.parent.mkdir(parents=True)
    makefile.write_text("am__append_26 = test_upgrade test_upgrade_large\n"
                        "test_upgrade$(EXEEXT): $(test_upgrade_OBJECTS) $(test_upgrade_DEPENDENCIES)\n"
                        "test_upgrade_large$(EXEEXT): $(test_upgrade_large_OBJECTS)\n"
                        "test_daemon$(EXEEXT): $(test_daemon_OBJECTS)\n"
                        "\t@rm -f test_upgrade_tls$(EXEEXT)\n")
    assert coverage.mhd_upgrade_tests(tmp_path) == ["test_upgrade", "test_upgrade_large"]


@pytest.mark.skipif(not SLOW, reason="builds MHD with --coverage: set CONFORMANCE_SLOW_TESTS=1")
def test_coverage_of_a_selection_is_read_back(tmp_path):
    proc = subprocess.run([str(coverage.ROOT / "conformance"), "coverage", "1.0.10", "--rule", "U-ACT-1",
                           "--mode", "epoll", "--transport", "plain", "--report", str(tmp_path), "-j", "2"],
                          cwd=coverage.ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "coverage.json").read_text())
    fns = {f["function"]: f for f in data["functions"]["suite"]}
    assert fns["MHD_upgrade_action"]["lines_hit"] > 0, "CLOSE was called: its lines must count"
    assert (tmp_path / "suite" / "index.html").exists() and (tmp_path / "coverage.md").exists()


def test_every_unreached_line_is_reviewed_or_said_to_be_not():
    fns = coverage.upgrade_functions(REPORT)
    reviewed = {"response.c:22": {"why": "dead", "note": "n"}, "response.c:99": {"why": "unreachable", "note": ""}}
    unreached, stale = coverage.review(fns, reviewed, lambda file, line: f"code {line}")
    by_line = {(u["file"], u["line"]): u for u in unreached}
    assert by_line[("response.c", 22)]["why"] == "dead"
    assert by_line[("response.c", 23)]["why"] is None
    assert by_line[("upgrade_process.c", 6)]["code"] == "code 6"
    assert stale == ["response.c:99"]
    md = coverage.review_markdown(unreached, stale, "9.9", True)
    assert "| response.c:23 | `MHD_upgrade_action` | `code 23` | **not reviewed** |  |" in md
    assert "dead: 1; unreachable: 0; not yet covered: 0; not reviewed: 2" in md
    assert "take them off): response.c:99" in md


def test_a_reviewed_list_names_only_known_reasons(tmp_path, monkeypatch):
    monkeypatch.setattr(coverage, "REVIEWED", tmp_path)
    (tmp_path / "9.9.json").write_text(json.dumps({"lines": {"a.c:1": {"why": "someday"}}}))
    with pytest.raises(coverage.Fail, match="someday"):
        coverage.reviewed_list("9.9")
    assert coverage.reviewed_list("0.0") is None
