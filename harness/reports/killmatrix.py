"""The kill matrix: which cases fail against which mutant MHD.

`./conformance selftest --mutants` runs the suite once per mutant of
servers/mutants.c (LD_PRELOAD into the reference server). A mutant is
killed when at least one case does not behave as the baseline says
(failed or error); a mutant no case kills shows a bug the suite would
miss, and fails the self-test."""

import os
import subprocess

from .. import catalog, outcome
# A kill that says little: nearly every case failed (the mutant broke
# everything), so no rule in particular caught it.
WEAK_SHARE = 0.8
WEAK_MIN_CASES = 20


def mutant_names(binary, library):
    """{name: needs a sanitizer to be seen} of the mutants the library
    knows, asked of the library itself."""
    env = dict(os.environ, LD_PRELOAD=str(library), CONFORMANCE_MUTANT="list")
    out = subprocess.run([str(binary), "--version"], env=env, capture_output=True, text=True, timeout=30)
    names = {line.split()[0]: "sanitize" in line.split()[1:] for line in out.stdout.splitlines() if line.strip()}
    if out.returncode != 0 or not names:
        raise RuntimeError(f"{library} did not list its mutants (exit {out.returncode}): {out.stderr.strip()}")
    return names


def killers(data):
    """The cases of one mutant run that did not behave as the baseline says."""
    return outcome.killed((data or {}).get("cases", []))


def build(runs):
    """runs: [(mutant, pytest exit status, results or None)] -> the matrix."""
    table = {"mutants": {}, "rules": {}}
    for name, rc, data in runs:
        cases = killers(data)
        rules = sorted({r for c in cases for r in c["rules"]})
        run = len((data or {}).get("cases", []))
        table["mutants"][name] = {
            "killed": bool(cases),
            "weak": bool(cases) and run >= WEAK_MIN_CASES and len(cases) >= WEAK_SHARE * run,
            "exit_status": rc,
            "cases_run": run,
            "killed_by": len(cases),
            "rules": rules,
            "example": cases[0]["id"] if cases else None,
            # A run that did not finish (no results) kills nothing we can name.
            "completed": data is not None,
        }
        for rule in rules:
            table["rules"].setdefault(rule, []).append(name)
    table["survivors"] = [n for n, m in table["mutants"].items() if not m["killed"]]
    return table


def text(table):
    lines = []
    width = max([len(n) for n in table["mutants"]] + [6])
    for name, m in table["mutants"].items():
        if m["killed"]:
            lines.append(f"{name:<{width}}  killed by {m['killed_by']:>3}/{m['cases_run']} cases"
                         + (" (WEAK: nearly every case failed)" if m.get("weak") else "")
                         + f": {' '.join(m['rules'])}")
        else:
            why = "" if m["completed"] else f" (the run did not finish: exit {m['exit_status']})"
            lines.append(f"{name:<{width}}  SURVIVED: no case failed{why}")
    return "\n".join(lines)


def markdown(table):
    out = ["# Kill matrix", "",
           f"{len(table['mutants'])} mutants, {len(table['survivors'])} survived.", "",
           "| mutant | killed by cases | rules whose cases kill it |", "|---|---|---|"]
    for name, m in table["mutants"].items():
        killed = f"{m['killed_by']} of {m['cases_run']}" if m["killed"] else "**SURVIVED**"
        if m.get("weak"):
            killed += " (weak: nearly every case failed)"
        out.append(f"| `{name}` | {killed} | {', '.join(m['rules'])} |")
    out += ["", "| rule | mutants it kills |", "|---|---|"]
    for rule in sorted(table["rules"], key=catalog.sort_key):
        out.append(f"| {rule} | {', '.join(table['rules'][rule])} |")
    return "\n".join(out) + "\n"

