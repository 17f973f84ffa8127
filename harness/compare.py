"""./conformance compare A/results.json B/results.json: what changed, rule
by rule and transport by transport, from run A (say MHD 0.9.75) to run B
(say 1.0.10). Exit status 1 when B deviates where A conformed (a
regression), 0 otherwise, 2 when a file cannot be read."""

import argparse
import json
import pathlib
import sys

REGRESSION, FIX, MEASURE, ONLY_A, ONLY_B, FLAKY = (
    "regression", "fix", "measure changed", "only in A", "only in B", "intermittent")


class CompareError(Exception):
    pass


def load(path):
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except OSError as e:
        raise CompareError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise CompareError(f"{path} is not JSON: {e}") from None
    if not isinstance(data, dict) or "rules" not in data or "cases" not in data:
        raise CompareError(f"{path} is not a results.json of ./conformance (no 'rules' or 'cases')")
    return data


def _verdicts(results):
    """{(rule, transport): (verdict, rule entry)}, tested pairs only."""
    out = {}
    for rule, entry in results["rules"].items():
        for transport, verdict in (entry.get("by_transport") or {}).items():
            if verdict in ("conforms", "deviates"):
                out[(rule, transport)] = (verdict, entry)
    return out


def _observed(results):
    """{case name: observed value} of the measure cases."""
    return {c["id"].split("::")[-1]: c["observed"] for c in results["cases"]
            if c.get("kind") == "measure" and c.get("observed") is not None}


def changes(a, b):
    """A list of (kind, rule, transport or case, what A said, what B says)."""
    out = []
    va, vb = _verdicts(a), _verdicts(b)
    for key in sorted(set(va) | set(vb)):
        rule, transport = key
        if key not in vb:
            out.append((ONLY_A, rule, transport, va[key][0], "not tested"))
            continue
        if key not in va:
            out.append((ONLY_B, rule, transport, "not tested", vb[key][0]))
            continue
        (was, ea), (now, eb) = va[key], vb[key]
        if was == now:
            continue
        if ea.get("intermittent") and eb.get("intermittent"):
            out.append((FLAKY, rule, transport, was, now))  # both baselines know it comes and goes
        elif now == "deviates":
            out.append((REGRESSION, rule, transport, was, now))
        else:
            out.append((FIX, rule, transport, was, now))
    oa, ob = _observed(a), _observed(b)
    rules = {c["id"].split("::")[-1]: ",".join(c["rules"]) for c in b["cases"]}
    for case in sorted(set(oa) & set(ob)):
        if oa[case] != ob[case]:
            out.append((MEASURE, rules[case], case, oa[case], ob[case]))
    return out


def _name(results, path):
    mhd = results.get("mhd") or {}
    return f"MHD {mhd.get('version', '?')} ({path})"


def _short(value, limit=80):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def text_report(found, a_name, b_name):
    lines = [f"A: {a_name}", f"B: {b_name}"]
    if not found:
        return "\n".join(lines + ["no change: every rule tested in both runs has the same verdict"]) + "\n"
    for kind in (REGRESSION, FIX, FLAKY, MEASURE, ONLY_A, ONLY_B):
        rows = [f for f in found if f[0] == kind]
        if rows:
            lines.append(f"{kind} ({len(rows)}):")
            lines += [f"  {rule} [{where}]: {_short(was)} -> {_short(now)}" for _, rule, where, was, now in rows]
    return "\n".join(lines) + "\n"


def markdown_report(found, a_name, b_name):
    regressions = sum(f[0] == REGRESSION for f in found)
    lines = [f"## Upgrade conformance: {a_name} → {b_name}", "",
             f"{regressions} regression(s), {sum(f[0] == FIX for f in found)} fix(es), "
             f"{sum(f[0] == MEASURE for f in found)} changed measure(s).", ""]
    if found:
        lines += ["| Change | Rule | Transport / case | A | B |", "|---|---|---|---|---|"]
        order = (REGRESSION, FIX, FLAKY, MEASURE, ONLY_A, ONLY_B)
        for kind, rule, where, was, now in sorted(found, key=lambda f: order.index(f[0])):
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
    return 1 if any(f[0] == REGRESSION for f in found) else 0
