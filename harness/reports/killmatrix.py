"""The kill matrix: which cases fail against which mutant MHD.

`./conformance selftest --mutants` runs the suite once per mutant of
servers/mutants.c (LD_PRELOAD into the reference server): by default only
the cases of the rules the mutant was built to break (its own rules, named
in mutants.c's table), with --all-rules every case. A mutant is killed
when at least one case does not behave as the baseline says (failed or
error). A mutant that no case of its own rules kills shows a bug the
suite would miss where it claims to look, and fails the self-test; so does
one that no case kills at all."""

import os
import subprocess
from collections import namedtuple

from .. import catalog, outcome
# A kill that says little: nearly every case failed (the mutant broke
# everything), so no rule in particular caught it.
WEAK_SHARE = 0.8
WEAK_MIN_CASES = 20


Mutant = namedtuple("Mutant", "rules sanitize")  # its own rules (IDs); seen only with --sanitize


def mutant_names(binary, library):
    """{name: Mutant} of the mutants the library knows, asked of the
    library itself ("NAME RULE[,RULE] [sanitize]" per line)."""
    env = dict(os.environ, LD_PRELOAD=str(library), CONFORMANCE_MUTANT="list")
    out = subprocess.run([str(binary), "--version"], env=env, capture_output=True, text=True, timeout=30)
    names = {}
    for line in out.stdout.splitlines():
        words = line.split()
        if len(words) >= 2:
            names[words[0]] = Mutant(words[1].split(","), "sanitize" in words[2:])
    if out.returncode != 0 or not names:
        raise RuntimeError(f"{library} did not list its mutants (exit {out.returncode}): {out.stderr.strip()}")
    return names


def killers(data):
    """The cases of one mutant run that did not behave as the baseline says."""
    return outcome.killed((data or {}).get("cases", []))


def build(runs, own=None):
    """runs: [(mutant, pytest exit status, results or None)], own: {mutant:
    its own rules} (None: not known) -> the matrix."""
    table = {"mutants": {}, "rules": {}}
    for name, rc, data in runs:
        cases = killers(data)
        rules = sorted({r for c in cases for r in c["rules"]})
        run = len((data or {}).get("cases", []))
        mine = (own or {}).get(name)
        table["mutants"][name] = {
            "killed": bool(cases),
            "own_rules": mine,
            # None when its own rules are not known
            "by_own_rule": None if mine is None else bool(set(mine) & set(rules)),
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
    # killed, but not by a case of the rule it breaks
    table["astray"] = [n for n, m in table["mutants"].items() if m["killed"] and m["by_own_rule"] is False]
    return table


def passed(table):
    return not table["survivors"] and not table.get("astray")


def text(table):
    lines = []
    width = max([len(n) for n in table["mutants"]] + [6])
    for name, m in table["mutants"].items():
        if m["killed"]:
            lines.append(f"{name:<{width}}  killed by {m['killed_by']:>3}/{m['cases_run']} cases"
                         + (" (WEAK: nearly every case failed)" if m.get("weak") else "")
                         + f": {' '.join(m['rules'])}"
                         + (f" (NOT by its own rule {', '.join(m['own_rules'])})"
                            if m.get("by_own_rule") is False else ""))
        else:
            why = "" if m["completed"] else f" (the run did not finish: exit {m['exit_status']})"
            lines.append(f"{name:<{width}}  SURVIVED: no case failed{why}")
    return "\n".join(lines)


def markdown(table):
    astray = table.get("astray", [])
    out = ["# Kill matrix", "",
           f"{len(table['mutants'])} mutants, {len(table['survivors'])} survived"
           + (f", {len(astray)} killed only outside their own rule" if astray else "") + ".", "",
           "| mutant | its own rule | killed by cases | rules whose cases kill it |", "|---|---|---|---|"]
    for name, m in table["mutants"].items():
        killed = f"{m['killed_by']} of {m['cases_run']}" if m["killed"] else "**SURVIVED**"
        if m.get("weak"):
            killed += " (weak: nearly every case failed)"
        if m.get("by_own_rule") is False:
            killed += " (**not by its own rule**)"
        out.append(f"| `{name}` | {', '.join(m.get('own_rules') or []) or '?'} | {killed} | {', '.join(m['rules'])} |")
    out += ["", "| rule | mutants it kills |", "|---|---|"]
    for rule in sorted(table["rules"], key=catalog.sort_key):
        out.append(f"| {rule} | {', '.join(table['rules'][rule])} |")
    return "\n".join(out) + "\n"

