"""./conformance coverage: which lines and branches of MHD's upgrade code a
selection of the suite reaches, from a --coverage build of MHD (gcov's
counters, read with gcovr).

    ./conformance coverage VERSION | --git DIR [--rev REV] | --tarball FILE
        [--rule P] [--mode M] [--transport T] [-j N] [--mhd-tests] [--report DIR]

It builds MHD with --coverage (cached, like ./conformance mhd build), clears
the counters, runs the selection against it (no baseline: every case runs
the same way whatever MHD does), and reads the counters of MHD's upgrade
code: the functions on the upgrade path in response.c, connection.c and
daemon.c (their names say upgrade, urh or forwarding) and all of
upgrade_process.c (MHD 1.0). --mhd-tests does the same for MHD's own
upgrade tests (make check of its test_upgrade* programs), side by side.

Writes REPORT/coverage.md (per function: lines and branches reached, and
the lines no case reached), REPORT/coverage.json, and gcovr's pages
(REPORT/suite/index.html, REPORT/mhd-tests/index.html). The reference
server writes its counters when it exits normally: a server the harness had
to kill, or one that crashed, adds nothing.

Every line the suite does not reach is looked up in the reviewed list of
that MHD version, baselines/coverage/VERSION.json ("FILE:LINE": why, and a
note): "dead" (cannot run in this build), "unreachable" (no use of the
public API and no fault the system may give reaches it) or "not yet
covered" (reachable; the note says what it would take). coverage.md lists
them with their reasons. A line unreached that the list does not name is a
drop, or code to review: exit status 1 (for the whole suite only; a
selection, --rule, --mode or --transport, reaches less by design). Exit
status: 0 done; 1 the whole suite left lines unreached that the reviewed
list does not name; 2 usage; 3 MHD does not build, or gcovr fails."""

import argparse
import json
import os
import pathlib
import re
import subprocess

from .. import ROOT, baseline
from . import deps, mhd
from .failure import Fail, say
from .inputs import check_modes, writable_folder
from .runner import add_selection_arguments, selection_run

DEFAULT_REPORT = ROOT / "reports" / "coverage"
# Per MHD version: why each line the suite does not reach stays unreached.
REVIEWED = baseline.BASELINES / "coverage"
WHY = ("dead", "unreachable", "not yet covered")
# The upgrade path: MHD's files that hold it, and the functions of the
# others that belong to it, by name.
UPGRADE_FILES = ("response.c", "connection.c", "daemon.c", "upgrade_process.c", "connection_https.c")
WHOLE_FILES = ("upgrade_process.c",)
UPGRADE_FUNCTION = re.compile(r"upgrade|urh|forward", re.I)


def upgrade_functions(report):
    """[{file, function, first, last, lines, lines_hit, branches,
    branches_hit, missed}] of the upgrade code in a gcovr JSON report:
    each function's lines run from its first line to the line before the
    next function of its file."""
    out = []
    for entry in report.get("files", []):
        name = pathlib.Path(entry["file"]).name
        if name not in UPGRADE_FILES:
            continue
        funcs = sorted(entry.get("functions", []), key=lambda f: f["lineno"])
        lines = {ln["line_number"]: ln for ln in entry.get("lines", []) if not ln.get("gcovr/noncode")}
        last_line = max(lines) if lines else 0
        for i, fn in enumerate(funcs):
            fname = fn["name"].split("(")[0]
            if name not in WHOLE_FILES and not UPGRADE_FUNCTION.search(fname):
                continue
            first = fn["lineno"]
            last = funcs[i + 1]["lineno"] - 1 if i + 1 < len(funcs) else last_line
            mine = [lines[n] for n in sorted(lines) if first <= n <= last]
            branches = [b for ln in mine for b in ln.get("branches", [])]
            out.append({"file": name, "function": fname, "first": first, "last": last,
                        "lines": len(mine), "lines_hit": sum(ln["count"] > 0 for ln in mine),
                        "branches": len(branches), "branches_hit": sum(b["count"] > 0 for b in branches),
                        "missed": ranges([ln["line_number"] for ln in mine if ln["count"] == 0]),
                        "missed_lines": [ln["line_number"] for ln in mine if ln["count"] == 0],
                        "reached": [ln["line_number"] for ln in mine if ln["count"] > 0]})
    return out


def ranges(numbers):
    """[3, 4, 5, 9] -> "3-5, 9"."""
    out, start, prev = [], None, None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(out)


def totals(functions):
    return {k: sum(f[k] for f in functions) for k in ("lines", "lines_hit", "branches", "branches_hit")}


def pct(hit, total):
    return f"{hit}/{total} ({100 * hit / total:.0f}%)" if total else "-"


def markdown(sources, title, notes=()):
    """The side-by-side table: one column pair per source ({name: functions}),
    the lines the first source did not reach and, with a second source, the
    lines only that one reached."""
    names = list(sources)
    first = sources[names[0]]
    lines = [f"# {title}", "",
             "Lines and branches of MHD's upgrade code reached (gcov, counted per function). "
             + "; ".join(f"**{n}**: lines {pct(totals(f)['lines_hit'], totals(f)['lines'])}, branches "
                         f"{pct(totals(f)['branches_hit'], totals(f)['branches'])}" for n, f in sources.items()),
             *(["", *notes] if notes else []),
             "", "| file | function | " + " | ".join(f"{n} lines | {n} branches" for n in names)
             + f" | lines {names[0]} did not reach |" + "".join(f" lines only {n} reached |" for n in names[1:]),
             "|---|---|" + "---|---|" * len(names) + "---|" * len(names)]
    by_key = {n: {(f["file"], f["function"]): f for f in fs} for n, fs in sources.items()}
    for f in first:
        key = (f["file"], f["function"])
        cols, only = [], []
        for n in names:
            g = by_key[n].get(key)
            cols += [pct(g["lines_hit"], g["lines"]), pct(g["branches_hit"], g["branches"])] if g else ["-", "-"]
            if n != names[0]:
                only.append(ranges(sorted(set(g["reached"]) - set(f["reached"]))) if g else "")
        lines.append(f"| {f['file']} | `{f['function']}` | " + " | ".join(cols) + f" | {f['missed'] or '-'} |"
                     + "".join(f" {o or '-'} |" for o in only))
    return "\n".join(lines) + "\n"


def reviewed_list(version):
    """{"FILE:LINE": {"why", "note"}} of MHD `version`, or None if it has
    no reviewed list."""
    path = REVIEWED / f"{version}.json"
    if not path.is_file():
        return None
    lines = json.loads(path.read_text())["lines"]
    wrong = {k: v.get("why") for k, v in lines.items() if v.get("why") not in WHY}
    if wrong:
        raise Fail(f"{path}: every line's 'why' is one of {', '.join(WHY)}; these are not: {wrong}", 2)
    return lines


def review(functions, reviewed, code_of=lambda file, line: ""):
    """(unreached, stale): every line the functions did not reach, as
    {file, line, function, code, why, note} (why None: not in the reviewed
    list), and the reviewed list's lines that are reached now."""
    unreached, seen = [], set()
    for f in functions:
        for n in f["missed_lines"]:
            key = f"{f['file']}:{n}"
            seen.add(key)
            entry = (reviewed or {}).get(key, {})
            unreached.append({"file": f["file"], "line": n, "function": f["function"], "code": code_of(f["file"], n),
                              "why": entry.get("why"), "note": entry.get("note", "")})
    stale = sorted(k for k in (reviewed or {}) if k not in seen)
    return unreached, stale


def review_markdown(unreached, stale, version, has_list):
    out = ["", f"## The lines the suite does not reach, and why (baselines/coverage/{version}.json)", ""]
    if not has_list:
        out.append(f"No reviewed list for MHD {version}: every line below is unreviewed.")
        out.append("")
    counts = {why: sum(u["why"] == why for u in unreached) for why in WHY}
    counts["not reviewed"] = sum(u["why"] is None for u in unreached)
    out += ["; ".join(f"{why}: {n}" for why, n in counts.items()), "",
            "| line | function | code | why | note |", "|---|---|---|---|---|"]
    for u in unreached:
        code = u["code"].strip().replace("|", "\\|")
        out.append(f"| {u['file']}:{u['line']} | `{u['function']}` | `{code}` | {u['why'] or '**not reviewed**'} "
                   f"| {u['note']} |")
    if stale:
        out += ["", "Reached now, still in the reviewed list (take them off): " + ", ".join(stale)]
    return "\n".join(out) + "\n"


def gcovr(tree, json_out, html_dir, log):
    html_dir.mkdir(parents=True, exist_ok=True)
    filters = [f"--filter={re.escape(str(tree / 'src' / 'microhttpd' / f))}" for f in UPGRADE_FILES]
    cmd = ["gcovr", "--root", str(tree), *filters, "--json", str(json_out),
           "--html-details", str(html_dir / "index.html"), str(tree / "src" / "microhttpd")]
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=tree, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise Fail(f"gcovr failed (exit status {proc.returncode}); log: {log}", 3)
    return json.loads(json_out.read_text())


def clear_counters(tree):
    for gcda in tree.rglob("*.gcda"):
        gcda.unlink()


def run_suite(args, prefix, report):
    say(f"running the selection against {prefix}")
    rc, data, output = selection_run(args, prefix, report)
    (report / "conformance.log").write_text(output)
    if data is None:
        raise Fail(f"the selection did not run (exit status {rc}); its output: {report / 'conformance.log'}\n"
                   + "\n".join(output.strip().splitlines()[-15:]), 3)
    return data


def mhd_upgrade_tests(tree):
    """The names of MHD's own upgrade test programs: the test_upgrade*
    programs the configured src/microhttpd/Makefile can build (configure's
    conditions, and a distribution's patches, may leave some out)."""
    makefile = (tree / "src" / "microhttpd" / "Makefile").read_text()
    return sorted(set(re.findall(r"^(test_upgrade\w*)\$\(EXEEXT\):", makefile, re.M)))


def run_mhd_tests(tree, log):
    """MHD's own upgrade tests (make check TESTS=test_upgrade...):
    ({test: PASS|FAIL|SKIP|ERROR|not run}, make's exit status)."""
    tests = mhd_upgrade_tests(tree)
    if not tests:
        raise Fail(f"no test_upgrade* program in {tree / 'src' / 'microhttpd' / 'Makefile'}", 3)
    say(f"running MHD's own upgrade tests (make check): {' '.join(tests)}")
    with open(log, "w") as f:
        proc = subprocess.run(["make", "-C", str(tree / "src" / "microhttpd"), f"-j{os.cpu_count() or 2}", "check",
                               "TESTS=" + " ".join(tests)], stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    text = pathlib.Path(log).read_text(errors="replace")
    results = {t: "not run" for t in tests}
    for result, test in re.findall(r"^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS): (test_upgrade\w*)", text, re.M):
        results[test] = result
    return results, proc.returncode


def run(args):
    report = writable_folder(pathlib.Path(args.report).resolve(), "--report")
    deps.ensure_packages(["gcovr"], "to read MHD's coverage counters", allow_install=not args.no_install)
    if args.git:
        prefix = mhd.build_source(*mhd.source_of_git(args.git, args.rev or "HEAD"), coverage=True,
                                  allow_install=not args.no_install)
    elif args.tarball:
        prefix = mhd.build_source(*mhd.source_of_tarball(args.tarball), coverage=True,
                                  allow_install=not args.no_install)
    else:
        prefix = mhd.build_version(args.version, coverage=True, allow_install=not args.no_install)
    marker = json.loads((prefix / mhd.MARKER).read_text())
    tree = pathlib.Path(marker.get("build_tree", ""))
    if not tree.is_dir():
        raise Fail(f"the coverage build of {prefix} has no build tree (it was removed?): build it again with "
                   "./conformance mhd build ... --coverage --rebuild", 3)
    clear_counters(tree)
    results = run_suite(args, prefix, report / "run")
    sources = {"suite": upgrade_functions(gcovr(tree, report / "suite.json", report / "suite", report / "gcovr.log"))}
    extra = {}
    if args.mhd_tests:
        clear_counters(tree)
        tests, rc = run_mhd_tests(tree, report / "mhd-tests.log")
        extra = {"mhd_tests": tests, "mhd_tests_exit_status": rc}
        say("MHD's tests: " + ", ".join(f"{t} {r}" for t, r in tests.items())
            + (f" (make check exit status {rc}; {report / 'mhd-tests.log'})" if rc else ""))
        sources["MHD's tests"] = upgrade_functions(gcovr(tree, report / "mhd-tests.json", report / "mhd-tests",
                                                         report / "gcovr-mhd-tests.log"))
    title = f"Coverage of MHD {marker.get('version')}'s upgrade code"
    notes = [f"The suite: {len(results['cases'])} cases ({report / 'run' / 'results.json'})."]
    if args.mhd_tests:
        notes.append("MHD's tests (make check): " + ", ".join(f"{t} {r}" for t, r in extra["mhd_tests"].items()) + ".")
    version = marker.get("version")
    reviewed = reviewed_list(version)

    def code_of(file, line):
        path = next(iter(tree.glob(f"src/*/{file}")), None)
        text = path.read_text(errors="replace").splitlines() if path else []
        return text[line - 1] if 0 < line <= len(text) else ""
    unreached, stale = review(sources["suite"], reviewed, code_of)
    (report / "coverage.md").write_text(markdown(sources, title, notes)
                                        + review_markdown(unreached, stale, version, reviewed is not None))
    (report / "coverage.json").write_text(json.dumps(
        {"mhd": marker, "cases": len(results["cases"]), **extra,
         "totals": {n: totals(f) for n, f in sources.items()}, "functions": sources,
         "unreached": unreached, "reviewed_but_reached": stale}, indent=1) + "\n")
    for name, fs in sources.items():
        t = totals(fs)
        print(f"coverage ({name}): lines {pct(t['lines_hit'], t['lines'])}, branches "
              f"{pct(t['branches_hit'], t['branches'])} of {len(fs)} upgrade functions")
    unreviewed = [u for u in unreached if u["why"] is None]
    print("coverage: unreached lines: " + ", ".join(
        f"{why} {sum(u['why'] == why for u in unreached)}" for why in WHY)
        + f", not reviewed {len(unreviewed)}"
        + ("" if reviewed is not None else f" (no reviewed list: baselines/coverage/{version}.json)"))
    if stale:
        print(f"coverage: reached now, still in the reviewed list: {', '.join(stale)}")
    print(f"coverage: {report / 'coverage.md'}, {report / 'suite' / 'index.html'}")
    whole_suite = not (args.rule or args.mode or args.transport)
    if reviewed is not None and unreviewed and whole_suite:
        print(f"coverage: {len(unreviewed)} unreached lines are not in baselines/coverage/{version}.json "
              f"(a drop, or code to review): " + ", ".join(f"{u['file']}:{u['line']}" for u in unreviewed[:20]))
        return 1
    return 0


def make_parser():
    p = argparse.ArgumentParser(prog="conformance coverage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("version", metavar="VERSION", nargs="?", help="a released MHD (from Debian's source package)")
    p.add_argument("--git", metavar="DIR", help="an MHD git repository (with --rev, default HEAD)")
    p.add_argument("--rev", metavar="REV", help="with --git: the revision")
    p.add_argument("--tarball", metavar="FILE", help="a release tarball")
    p.add_argument("--mhd-tests", action="store_true",
                   help="also MHD's own upgrade tests (make check of test_upgrade*), side by side")
    add_selection_arguments(p, f"where the reports go (default {DEFAULT_REPORT.relative_to(ROOT)})")
    return p


def main(argv):
    p = make_parser()
    args = p.parse_args(argv)
    if sum(map(bool, (args.version, args.git, args.tarball))) != 1:
        p.error("give one source: VERSION, --git DIR [--rev REV], or --tarball FILE")
    check_modes(p, args.mode)
    args.report = args.report or str(DEFAULT_REPORT)
    try:
        return run(args)
    except Fail as e:  # mhd's and deps' errors are Fail too
        say(str(e), "coverage")
        return e.code
    except KeyboardInterrupt:
        say("interrupted", "coverage")
        return 130
