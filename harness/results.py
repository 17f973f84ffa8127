"""The run's report: results.json (the contract other tools read), and
summary.md (one row per rule), report.html (the matrix in colours). See
README.md, "Reports"."""

import json
import pathlib

from . import html_report

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


def build(cases, catalog, mhd, duration_s, transports, baseline_path, volume=1, mutant=None):
    return {
        "schema": SCHEMA,
        "mhd": mhd,
        "mutant": mutant,
        "baseline": str(baseline_path) if baseline_path else None,
        "transports": list(transports),
        "volume": volume,
        "duration_s": round(duration_s, 3),
        "totals": {o: sum(c["outcome"] == o for c in cases) for o in OUTCOMES},
        "cases": cases,
        "rules": aggregate(cases, catalog, transports),
    }


def transports_text(results):
    """Which transports the run covered, in words (older results: from the cases)."""
    ran = results.get("transports") or sorted({c["transport"] for c in results["cases"] if c.get("transport")})
    return " and ".join(ran) or "no transport"


def summary_markdown(results, catalog):
    mhd = results["mhd"]
    t = results["totals"]
    lines = [
        f"# Upgrade conformance: MHD {mhd.get('version')} ({mhd.get('prefix')})",
        "",
        *([f"**MUTANT: {results['mutant']}** (a self-test run: its failures are the mutant's, not MHD's)", ""]
          if results.get("mutant") else []),
        f"{len(results['cases'])} cases over {transports_text(results)} in {results['duration_s']:.1f} s: " +
        ", ".join(f"{n} {o}" for o, n in t.items() if n),
        "",
        "| Rule | Kind | Verdict | Cases | Outcomes | Promise |",
        "|---|---|---|---|---|---|",
    ]
    for rule_id, r in results["rules"].items():
        outcomes = ", ".join(f"{n} {o}" for o, n in r["outcomes"].items())
        promise = catalog[rule_id].promise.replace("|", "\\|")
        if len(promise) > 90:
            promise = promise[:87] + "..."
        verdict = r["verdict"]
        if r["kind"] == "measure" and r.get("observed"):
            verdict += " (measured)"
        if r.get("intermittent"):
            verdict += " (intermittent)"
        if r.get("failure_rate", {}).get("failures"):
            verdict += f" ({rate_text(r['failure_rate'])})"
        lines.append(f"| {rule_id} | {r['kind']} | {verdict} | {r['cases']} | {outcomes} | {promise} |")
    return "\n".join(lines) + "\n"


def write(report_dir, results, catalog):
    report_dir = pathlib.Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (report_dir / "summary.md").write_text(summary_markdown(results, catalog))
    (report_dir / "report.html").write_text(html_report.render(results, catalog))


def terminal_lines(results):
    """A short per-family view for the end of a run."""
    families = {}
    for rule_id, r in results["rules"].items():
        fam = families.setdefault(rule_id.split("-")[1], {"conforms": [], "deviates": [], "measured": [],
                                                          "untested": []})
        name = rule_id.split("-", 1)[1]
        bounded = r.get("intermittent_rate")
        if bounded:
            name += (f" (intermittent: {bounded['failures']}/{bounded['attempts']} attempts failed, the baseline "
                     f"allows {bounded['max_failure_rate']:.0%}" + ("; TOO OFTEN" if bounded["exceeded"] else "")
                     + ")")
        elif r.get("intermittent") and r["verdict"] == "conforms":
            name += " (known intermittent deviation, not seen this run)"
        elif r.get("failure_rate", {}).get("failures"):
            name += f" ({rate_text(r['failure_rate'])})"
        fam[r["verdict"]].append(name)
    out = []
    for fam, v in families.items():
        if not v["conforms"] and not v["deviates"] and not v["measured"]:
            continue
        parts = []
        if v["conforms"]:
            parts.append("conforms: " + " ".join(v["conforms"]))
        if v["deviates"]:
            parts.append("DEVIATES: " + " ".join(v["deviates"]))
        if v["measured"]:
            parts.append("measured (no baseline value): " + " ".join(v["measured"]))
        if v["untested"]:
            parts.append("untested: " + " ".join(v["untested"]))
        out.append(f"  {fam:<7} " + "; ".join(parts))
    unrecorded = [c["id"].split("::")[-1] for c in results.get("cases", []) if c["outcome"] == "unrecorded"]
    if unrecorded:
        out.append("  UNRECORDED measures (the baseline has no value for them; fails the gate): "
                   + " ".join(unrecorded[:20]) + (f" and {len(unrecorded) - 20} more" if len(unrecorded) > 20 else ""))
    return out
