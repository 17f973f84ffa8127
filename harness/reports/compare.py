"""./conformance compare A/results.json B/results.json (or the report
folders): what changed, per
rule, transport and mode, from run A (say MHD 0.9.75) to run B (say
1.0.10). Exit status 1 when B deviates where A conformed (a regression,
also a new mode of a rule that already deviated) or B lost a cell A
conformed in (untested or an error in B), 0 otherwise, 2 when a file
cannot be read."""

import argparse
import json
import sys

from .. import modes, outcome

REGRESSION, LOST, FIX, MEASURE, ONLY_A, ONLY_B, FLAKY, STILL = (
    "regression", "lost", "fix", "measure changed", "only in A", "only in B", "intermittent", "still deviates")
ORDER = (REGRESSION, LOST, FIX, FLAKY, STILL, MEASURE, ONLY_A, ONLY_B)
GROUPED = 3  # beyond this many cells, a measure's change names how many, not which
FAILING = (REGRESSION, LOST)


class CompareError(Exception):
    pass


def load(path):
    """A run's results, given as its results.json or its report folder."""
    from .results import Unreadable, read  # the one reader of a run's results.json
    try:
        path, data = read(path)
    except Unreadable as e:
        raise CompareError(str(e)) from None
    if "rules" not in data:
        raise CompareError(f"{path} is not a results.json of ./conformance (no 'rules' or 'cases')")
    return data


def _cells(results):
    """{(rule, transport, mode): (verdict, intermittent)} from the cases
    (outcome.cell_verdict: deviates, conforms, measured, error, untested);
    a measure cell that measured is compared by its values below."""
    out = {}
    for (rule, cell), cases in outcome.cells(results["cases"]).items():
        transport = cases[0].get("transport") or "-"
        mode = cell[:-len(transport) - 1] if cell != "api" else "-"
        out[(rule, transport, mode)] = (outcome.cell_verdict(cases),
                                        any(c.get("baseline") == "intermittent" for c in cases))
    return out


def _observed(results):
    """{case name: observed value} of the measure cases that measured."""
    return outcome.measured_values(results["cases"])


KEPT = ("conforms", "measured")  # MHD kept the promise, or measured a value (compared below)


def changes(a, b):
    """A list of (kind, rule, where, what A said, what B says): `where` is
    the transport and the modes (a case name for a measure)."""
    ca, cb = _cells(a), _cells(b)
    rows = {}  # (kind, rule, transport, was, now) -> [modes]
    order = [m.name for m in modes.MODES]
    for key in sorted(set(ca) | set(cb), key=lambda k: (k[0], k[1], order.index(k[2]) if k[2] in order else 99)):
        rule, transport, mode = key
        (was, flaky_a), (now, flaky_b) = ca.get(key, ("not run", False)), cb.get(key, ("not run", False))
        decided_a, decided_b = was in KEPT + ("deviates",), now in KEPT + ("deviates",)
        if was == now == "deviates" and not (flaky_a or flaky_b):
            rows.setdefault((STILL, rule, transport, was, now), []).append(mode)  # what B has yet to fix
            continue
        if was == now or (was in KEPT and now in KEPT) or not (decided_a or decided_b):
            continue
        if decided_a and decided_b:
            kind = FLAKY if flaky_a and flaky_b else REGRESSION if now == "deviates" else FIX
        elif was in KEPT and now in ("untested", "error"):
            kind = LOST  # B could not decide where A conformed: a crash or a harness fault hides it
        elif decided_a:
            kind = ONLY_A
        else:
            kind = ONLY_B
        rows.setdefault((kind, rule, transport, was, now), []).append(mode)
    out = [(kind, rule, f"{transport}: {', '.join(modes)}", was, now)
           for (kind, rule, transport, was, now), modes in rows.items()]
    oa, ob = _observed(a), _observed(b)
    rules = {c["id"].split("::")[-1]: ",".join(c["rules"]) for c in b["cases"]}
    measured = {}  # (rule, case function, A's value, B's value) -> [cells]: one line per change, not per case
    for case in sorted(set(oa) & set(ob)):
        if oa[case] != ob[case]:
            function, _, cell = case.partition("[")
            key = (rules[case], function, _short(oa[case], 10 ** 6), _short(ob[case], 10 ** 6))
            measured.setdefault(key, []).append((cell.rstrip("]"), oa[case], ob[case]))
    for (rule, function, _, _), cells in measured.items():
        where = (f"{function}[{', '.join(c for c, _, _ in cells)}]" if len(cells) <= GROUPED
                 else f"{function} in {len(cells)} cells")
        out.append((MEASURE, rule, where, cells[0][1], cells[0][2]))
    return out


def _name(results, path):
    mhd = results.get("mhd") or {}
    mutant = f", MUTANT {results['mutant']}" if results.get("mutant") else ""
    return f"MHD {mhd.get('version', '?')}{mutant} ({path})"


def _short(value, limit=80):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def text_report(found, a_name, b_name):
    lines = [f"A: {a_name}", f"B: {b_name}"]
    if not found:
        return "\n".join(lines + ["no change: every cell tested in both runs has the same verdict"]) + "\n"
    for kind in ORDER:
        rows = [f for f in found if f[0] == kind]
        if rows:
            lines.append(f"{kind} ({len(rows)}):")
            lines += [f"  {rule} [{where}]: {_short(was)} -> {_short(now)}" for _, rule, where, was, now in rows]
    return "\n".join(lines) + "\n"


def markdown_report(found, a_name, b_name):
    regressions = sum(f[0] == REGRESSION for f in found)
    lines = [f"## Upgrade conformance: {a_name} → {b_name}", "",
             f"{regressions} regression(s), {sum(f[0] == LOST for f in found)} lost, "
             f"{sum(f[0] == FIX for f in found)} fix(es), {sum(f[0] == MEASURE for f in found)} changed measure(s).",
             ""]
    if found:
        lines += ["| Change | Rule | Transport: modes / case | A | B |", "|---|---|---|---|---|"]
        for kind, rule, where, was, now in sorted(found, key=lambda f: ORDER.index(f[0])):
            cells = [kind, rule, where, _short(was, 60), _short(now, 60)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(prog="conformance compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="A/results.json", help="the run to compare from (e.g. the MHD in use)")
    p.add_argument("b", metavar="B/results.json", help="the run to compare to (e.g. the candidate)")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the comparison as Markdown (e.g. $GITHUB_STEP_SUMMARY)")
    args = p.parse_args(argv)
    try:
        if args.markdown:
            try:  # before anything else: a CI job summary file is appended to
                with open(args.markdown, "a"):
                    pass
            except OSError as e:
                raise CompareError(f"--markdown {args.markdown}: cannot write it ({e.strerror or e})") from None
        a, b = load(args.a), load(args.b)
        if a.get("schema") != b.get("schema"):
            raise CompareError(f"{args.a} has schema {a.get('schema')}, {args.b} schema {b.get('schema')}: "
                               "results of different schema versions cannot be compared; run both with "
                               "the same suite")
    except CompareError as e:
        print(f"conformance compare: {e}", file=sys.stderr)
        return 2
    found = changes(a, b)
    a_name, b_name = _name(a, args.a), _name(b, args.b)
    sys.stdout.write(text_report(found, a_name, b_name))
    if args.markdown:
        with open(args.markdown, "a") as f:  # a CI job summary file is appended to
            f.write(markdown_report(found, a_name, b_name))
    return 1 if any(f[0] in FAILING for f in found) else 0
