"""The flake check: `./conformance selftest --repeat N` runs the suite N
times and names every case whose outcome varied. A case of a rule the
baseline marks intermittent may vary (its failure rate is summed over the
runs); any other variation is a flaky case and fails the self-test."""

from .. import catalog


def build(runs):
    """runs: [(pytest exit status, results or None)] -> the flake table."""
    outcomes = {}   # case id -> [outcome per run, None where it did not run]
    intermittent = set()
    problems = {}   # case id -> what its failed runs saw (failure kind: summary), each once
    rates = {}
    for i, (_, data) in enumerate(runs):
        for case in (data or {}).get("cases", []):
            outcomes.setdefault(case["id"], [None] * len(runs))[i] = case["outcome"]
            if case.get("baseline") == "intermittent":
                intermittent.add(case["id"])
            if case["outcome"] in ("failed", "error"):
                seen = f"{case.get('failure_kind') or case['outcome']}: {case.get('summary') or '(no summary)'}"
                if seen not in problems.setdefault(case["id"], []):
                    problems[case["id"]].append(seen)
        for rule, entry in ((data or {}).get("rules") or {}).items():
            rate = entry.get("failure_rate")
            if rate:
                total = rates.setdefault(rule, {"failures": 0, "attempts": 0})
                total["failures"] += rate["failures"]
                total["attempts"] += rate["attempts"]
    varied = {cid: seen for cid, seen in outcomes.items() if len(set(seen)) > 1}
    return {
        "runs": [{"exit_status": rc, "totals": (data or {}).get("totals"),
                  "duration_s": (data or {}).get("duration_s")} for rc, data in runs],
        "cases": len(outcomes),
        "flaky": {cid: seen for cid, seen in varied.items() if cid not in intermittent},
        "problems": {cid: problems[cid] for cid in varied if cid not in intermittent and problems.get(cid)},
        "intermittent": {cid: seen for cid, seen in varied.items() if cid in intermittent},
        "failure_rates": dict(sorted(rates.items(), key=lambda kv: catalog.sort_key(kv[0]))),
    }


def _counts(seen):
    return ", ".join(f"{o or 'not run'} {seen.count(o)}x" for o in sorted(set(seen), key=str))


def passed(table):
    return not table["flaky"] and all(r["exit_status"] == 0 for r in table["runs"])


def text(table):
    n = len(table["runs"])
    bad_runs = [i + 1 for i, r in enumerate(table["runs"]) if r["exit_status"] != 0]
    lines = [f"{n} runs of {table['cases']} cases: {len(table['flaky'])} flaky, "
             f"{len(table['intermittent'])} varied within a known intermittent deviation"
             + (f"; runs {bad_runs} did not exit 0" if bad_runs else "")]
    for cid, seen in table["flaky"].items():
        lines.append(f"  FLAKY {cid}: {_counts(seen)}")
        lines += [f"    seen: {problem}" for problem in table.get("problems", {}).get(cid, [])]
    for cid, seen in table["intermittent"].items():
        lines.append(f"  intermittent (baseline) {cid}: {_counts(seen)}")
    for rule, rate in table["failure_rates"].items():
        lines.append(f"  {rule}: {rate['failures']}/{rate['attempts']} attempts failed over the {n} runs")
    return "\n".join(lines)
