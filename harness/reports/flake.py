"""The flake check: `./conformance selftest --repeat N` runs the suite N
times (under a load profile, if asked) and names every case whose outcome
varied. A case that can meet a known race may vary (each race's attempts
are summed over the runs); any other variation is a flaky case and fails
the self-test, and so does a run that did not exit 0."""

from .. import catalog, outcome


def build(runs):
    """runs: [(pytest exit status, results or None[, load profile])] -> the
    flake table."""
    runs = [(r[0], r[1], r[2] if len(r) > 2 else "none") for r in runs]
    outcomes = {}   # case id -> [outcome per run, None where it did not run]
    intermittent = set()
    problems = {}   # case id -> what its failed runs saw (failure kind: summary), each once
    rates = {}
    for i, (_, data, _) in enumerate(runs):
        for case in (data or {}).get("cases", []):
            outcomes.setdefault(case["id"], [None] * len(runs))[i] = case["outcome"]
            if case.get("baseline") == "intermittent" or case.get("race"):
                intermittent.add(case["id"])
            if case["outcome"] in outcome.FAILING:
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
        "runs": [{"exit_status": rc, "load": profile, "totals": (data or {}).get("totals"),
                  "duration_s": (data or {}).get("duration_s"), "headline": (data or {}).get("gate", {}).get("headline")}
                 for rc, data, profile in runs],
        "cases": len(outcomes),
        "flaky": {cid: seen for cid, seen in varied.items() if cid not in intermittent},
        "problems": {cid: problems[cid] for cid in varied if cid not in intermittent and problems.get(cid)},
        "intermittent": {cid: seen for cid, seen in varied.items() if cid in intermittent},
        "failure_rates": dict(sorted(rates.items(), key=lambda kv: catalog.sort_key(kv[0]))),
        "races": _races([data for _, data, _ in runs]),
    }


def _races(runs):
    """{race: {failures, attempts, per_run: [[failures, attempts], ...]}}:
    each known race's attempts, run by run (what `./conformance baseline`
    proposes its rates from)."""
    out = {}
    for i, data in enumerate(runs):
        for name, seen in outcome.race_summary((data or {}).get("cases", [])).items():
            entry = out.setdefault(name, {"failures": 0, "attempts": 0, "per_run": [[0, 0] for _ in runs]})
            entry["failures"] += seen["failures"]
            entry["attempts"] += seen["attempts"]
            entry["per_run"][i] = [seen["failures"], seen["attempts"]]
    return out


def _counts(seen):
    return ", ".join(f"{o or 'not run'} {seen.count(o)}x" for o in sorted(set(seen), key=str))


def passed(table):
    return not table["flaky"] and all(r["exit_status"] == 0 for r in table["runs"])


def text(table):
    n = len(table["runs"])
    bad_runs = [i + 1 for i, r in enumerate(table["runs"]) if r["exit_status"] != 0]
    lines = [f"{n} runs of {table['cases']} cases: {len(table['flaky'])} flaky, "
             f"{len(table['intermittent'])} varied within a known race"
             + (f"; runs {bad_runs} did not exit 0" if bad_runs else "")]
    for i, r in enumerate(table["runs"]):
        if r["exit_status"] != 0:
            lines.append(f"  run {i + 1} ({r.get('load', 'none')}): exit {r['exit_status']}: {r.get('headline')}")
    for cid, seen in table["flaky"].items():
        lines.append(f"  FLAKY {cid}: {_counts(seen)}")
        lines += [f"    seen: {problem}" for problem in table.get("problems", {}).get(cid, [])]
    for cid, seen in table["intermittent"].items():
        lines.append(f"  intermittent (baseline) {cid}: {_counts(seen)}")
    for rule, rate in table["failure_rates"].items():
        lines.append(f"  {rule}: {rate['failures']}/{rate['attempts']} attempts failed over the {n} runs")
    for name, race in table.get("races", {}).items():
        per_run = ", ".join(f"{f}/{a}" for f, a in race["per_run"])
        lines.append(f"  known race {name}: struck {race['failures']} of {race['attempts']} attempts "
                     f"(per run: {per_run})")
    return "\n".join(lines)
