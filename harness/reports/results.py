"""The run's report: results.json (the contract other tools read), and
summary.md (one row per rule), report.html (the matrix in colours). See
README.md, "Reports"."""

import json
import pathlib


SCHEMA = 1
OUTCOMES = ("passed", "failed", "expected-deviation", "unrecorded", "skipped", "error")


def rule_verdict(verdicts):
    """One verdict from the case verdicts of a rule: deviates if any case
    deviates; conforms if any conforms; measured if its cases only measured
    (nothing recorded to compare with); untested if none decided."""
    for verdict in ("deviates", "conforms", "measured"):
        if verdict in verdicts:
            return verdict
    return "untested"


def repeated(observed):
    """An observed value of a case that repeats one attempt many times."""
    return isinstance(observed, dict) and {"attempts", "failures"} <= observed.keys()


def rate_text(rate):
    return f"{rate['failures']}/{rate['attempts']} attempts failed"


def aggregate(cases, catalog, transports):
    rules = {}
    for rule in catalog.values():
        mine = [c for c in cases if rule.id in c["rules"]]
        entry = {
            "kind": rule.kind,
            "verdict": rule_verdict([c["verdict"] for c in mine]),
            "by_transport": {t: rule_verdict([c["verdict"] for c in mine if c["transport"] == t])
                             for t in transports},
            "cases": len(mine),
            "outcomes": {o: n for o in OUTCOMES if (n := sum(c["outcome"] == o for c in mine))},
        }
        tries = [c["observed"] for c in mine if repeated(c.get("observed"))]
        if tries:
            # Cases that repeat an attempt (ACT-1, SUSP-1): how often it failed.
            entry["failure_rate"] = {"failures": sum(t["failures"] for t in tries),
                                     "attempts": sum(t["attempts"] for t in tries)}
        if any(c.get("baseline") == "intermittent" for c in mine):
            # Known to deviate now and then: a conforming run says "not seen this time".
            entry["intermittent"] = True
        if rule.kind == "measure":
            entry["observed"] = {c["id"].split("::")[-1]: c.get("observed") for c in mine
                                 if c.get("observed") is not None}
        rules[rule.id] = entry
    return rules


# Why a case fails the gate, in the order reports list them.
PROBLEMS = {
    "new": "new deviation",
    "otherwise": "deviates otherwise than the baseline says",
    "too-often": "known intermittent deviation, more often than the baseline allows",
    "gone": "known deviation no longer seen (update the baseline)",
    "unrecorded": "measure with no value in the baseline",
    "error": "error: the harness could not decide the case",
}
PLURALS = {"new": "new deviations", "otherwise": "cases that deviate otherwise than the baseline says",
           "too-often": "intermittent deviations seen too often", "gone": "known deviations gone",
           "unrecorded": "unrecorded measures", "error": "errors"}
# A rule's (or a matrix cell's) state, worst first: a symbol and words, so
# that no report relies on colour alone.
STATES = {
    "fails": ("\u2717", "fails the gate"),
    "error": ("\u26a0", "error: the harness could not decide (fails the gate)"),
    "known": ("!", "deviates, as the baseline expects"),
    "conforms": ("\u2713", "conforms"),
    "measured": ("\u2248", "measured, nothing recorded to compare"),
    "untested": ("\u2013", "untested (skipped)"),
}


def problem(case):
    """The PROBLEMS key of a case that fails the gate, else None."""
    if case["outcome"] in ("error", "unrecorded"):
        return case["outcome"]
    if case["outcome"] != "failed":
        return None
    if case.get("too_often"):
        return "too-often"
    if case["verdict"] == "conforms":
        return "gone"
    return "otherwise" if case.get("baseline") else "new"


def state(cases):
    """The STATES key of a set of cases (a rule's, a cell's)."""
    problems = {problem(c) for c in cases} - {None}
    if problems - {"error"}:
        return "fails"
    if problems:
        return "error"
    verdicts = {c["verdict"] for c in cases}
    for verdict, name in (("deviates", "known"), ("conforms", "conforms"), ("measured", "measured")):
        if verdict in verdicts:
            return name
    return "untested"


def problems_first(cases):
    """Cases in report order: those that fail the gate first (by PROBLEMS),
    then known deviations, then the rest."""
    order = list(PROBLEMS)
    return sorted(cases, key=lambda c: (order.index(problem(c)) if problem(c) else
                                        len(order) + (0 if c["verdict"] == "deviates" else 1)))


def gate(cases, interrupted=False, baseline=None):
    """The run's verdict, the first line of every report:
    {passed, headline, problems: {PROBLEMS key: [rule IDs]}}."""
    found = {}
    for case in cases:
        kind = problem(case)
        if kind:
            found.setdefault(kind, {}).setdefault(case["rules"][0] if case["rules"] else "?", 0)
            found[kind][case["rules"][0] if case["rules"] else "?"] += 1
    parts = []
    for kind in PROBLEMS:
        if kind in found:
            n = sum(found[kind].values())
            rules = sorted(found[kind])
            parts.append(f"{n} {PLURALS[kind] if n != 1 else PROBLEMS[kind]} ("
                         + ", ".join(rules[:6]) + (f" and {len(rules) - 6} more rules" if len(rules) > 6 else "")
                         + ")")
    known = [c for c in cases if c["outcome"] == "expected-deviation"]
    if parts:
        headline = "FAILED: " + "; ".join(parts)
    elif not cases:
        headline = "FAILED: no case ran"
    else:
        headline = (f"PASSED: all {len(cases)} cases behaved as the baseline"
                    + (f" ({pathlib.Path(baseline).name})" if baseline else " (none: every deviation is new)")
                    + " says" + (f"; {len(known)} known deviations in "
                                 f"{len({r for c in known for r in c['rules'][:1]})} rules" if known else ""))
    if interrupted:
        headline = "INTERRUPTED, the run is incomplete. " + headline
    return {"passed": not parts and bool(cases) and not interrupted, "headline": headline,
            "problems": {k: sorted(v) for k, v in found.items()}}


def build(cases, catalog, mhd, duration_s, transports, baseline_path, volume=1, mutant=None, interrupted=False):
    for case in cases:
        kind = problem(case)
        if kind:
            case["problem"] = kind
    return {
        "schema": SCHEMA,
        "mhd": mhd,
        "mutant": mutant,
        "baseline": str(baseline_path) if baseline_path else None,
        "transports": list(transports),
        "volume": volume,
        "duration_s": round(duration_s, 3),
        "interrupted": interrupted,
        "gate": gate(cases, interrupted, baseline_path),
        "totals": {o: sum(c["outcome"] == o for c in cases) for o in OUTCOMES},
        "cases": cases,
        "rules": aggregate(cases, catalog, transports),
    }


def transports_text(results):
    """Which transports the run covered, in words (older results: from the cases)."""
    ran = results.get("transports") or sorted({c["transport"] for c in results["cases"] if c.get("transport")})
    return " and ".join(ran) or "no transport"


def case_name(case):
    return case["id"].split("::")[-1]


def reason(case):
    """A case's one-line reason: the problem, and the failure's summary."""
    text = case.get("summary") or case.get("outcome")
    kind = problem(case)
    return f"{PROBLEMS[kind]}: {text}" if kind else text


def selected(results):
    """The rules the run had cases for (what --rule, --mode, -k kept)."""
    return {rule_id: r for rule_id, r in results["rules"].items() if r["cases"]}


def summary_markdown(results, catalog):
    mhd = results["mhd"]
    t = results["totals"]
    verdict = results.get("gate") or gate(results["cases"], results.get("interrupted"), results.get("baseline"))
    lines = [
        f"# Upgrade conformance: MHD {mhd.get('version')}",
        "",
        f"**{verdict['headline']}**",
        "",
        *([f"**MUTANT: {results['mutant']}** (a self-test run: its failures are the mutant's, not MHD's)", ""]
          if results.get("mutant") else []),
        f"MHD from `{mhd.get('prefix')}`; baseline `{results.get('baseline') or 'none'}`; "
        f"{len(results['cases'])} cases over {transports_text(results)} in {results['duration_s']:.1f} s: " +
        ", ".join(f"{n} {o}" for o, n in t.items() if n),
        "",
    ]
    bad = problems_first([c for c in results["cases"] if problem(c)])
    if bad:
        lines += [f"## Cases that did not behave ({len(bad)})", "", "| Case | Rules | Why |", "|---|---|---|"]
        for case in bad[:200]:
            lines.append(f"| `{case_name(case)}` | {', '.join(case['rules'])} | "
                         f"{reason(case).replace('|', chr(92) + '|')} |")
        if len(bad) > 200:
            lines.append(f"| ... | | {len(bad) - 200} more: see results.json |")
        lines.append("")
    lines += ["## Rules", "", "| Rule | Kind | State | Cases | Outcomes | Promise |", "|---|---|---|---|---|---|"]
    for rule_id, r in selected(results).items():
        outcomes = ", ".join(f"{n} {o}" for o, n in r["outcomes"].items())
        promise = catalog[rule_id].promise.replace("|", "\\|") if rule_id in catalog else ""
        if len(promise) > 90:
            promise = promise[:87] + "..."
        mine = [c for c in results["cases"] if rule_id in c["rules"]]
        symbol, words = STATES[state(mine)]
        if r.get("intermittent"):
            words += " (intermittent)"
        if r.get("failure_rate", {}).get("failures"):
            words += f" ({rate_text(r['failure_rate'])})"
        lines.append(f"| {rule_id} | {r['kind']} | {symbol} {words} | {r['cases']} | {outcomes} | {promise} |")
    return "\n".join(lines) + "\n"


def write(report_dir, results, catalog):
    report_dir = pathlib.Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (report_dir / "summary.md").write_text(summary_markdown(results, catalog))
    from . import html_report  # it reads this module's states: imported once both exist
    (report_dir / "report.html").write_text(html_report.render(results, catalog))


def terminal_lines(results):
    """Per family the rules by state, on the console: full IDs, to paste
    into --rule."""
    cases = results.get("cases", [])
    families = {}
    for rule_id, r in results["rules"].items():
        mine = [c for c in cases if rule_id in c["rules"]]
        if cases and not mine:
            continue  # not selected
        here = state(mine) if mine else {"deviates": "known"}.get(r["verdict"], r["verdict"])
        name = rule_id
        bounded = r.get("intermittent_rate")
        if bounded:
            name += (f" (intermittent: {bounded['failures']}/{bounded['attempts']} attempts failed, the baseline "
                     f"allows {bounded['max_failure_rate']:.0%}" + ("; TOO OFTEN" if bounded["exceeded"] else "")
                     + ")")
        elif r.get("intermittent") and r["verdict"] == "conforms":
            name += " (known intermittent deviation, not seen this run)"
        elif r.get("failure_rate", {}).get("failures"):
            name += f" ({rate_text(r['failure_rate'])})"
        families.setdefault(rule_id.split("-")[1], {}).setdefault(here, []).append(name)
    heads = {"fails": "FAILS THE GATE", "error": "ERROR", "known": "known deviation", "conforms": "conforms",
             "measured": "measured (no baseline value)", "untested": "untested"}
    out = []
    for fam, by_state in families.items():
        parts = [f"{heads[k]}: {' '.join(by_state[k])}" for k in STATES if k in by_state]
        out.append(f"  {fam:<7} " + "; ".join(parts))
    return out


def misbehaving_lines(results, most=40):
    """The cases that did not behave, worst first, each with its one-line
    reason: how the console ends."""
    bad = problems_first([c for c in results.get("cases", []) if problem(c)])
    if not bad:
        return []
    out = [f"cases that did not behave ({len(bad)}):"]
    for case in bad[:most]:
        out.append(f"  {case_name(case)} [{', '.join(case['rules'])}] {reason(case)}"[:240])
    if len(bad) > most:
        out.append(f"  ... and {len(bad) - most} more (summary.md, results.json)")
    return out
