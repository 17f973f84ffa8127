"""What a run writes: results.json (the contract other tools read),
summary.md (one row per rule) and report.html, and the console's lines.
Every verdict, state and headline comes from harness/outcome.py; this
module only lays them out. See README.md, "Reports"."""

import json
import pathlib
import shlex

from .. import modes, outcome
from ..deadlines import FACTOR_ENV
from ..outcome import STATES, case_name, problem, problems_first, reason
from . import facts, html_report, interop, junit
from .confirmation import confirmation_lines

SCHEMA = 1
# The failure kinds of a wait that ran out of time (harness/outcome.py KINDS).
WAITED = ("stall", "timeout", "slow")


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
            "verdict": outcome.rule_verdict([c["verdict"] for c in mine]),
            "by_transport": {t: outcome.rule_verdict([c["verdict"] for c in mine if c["transport"] == t])
                             for t in transports},
            "state": outcome.state(mine),
            "cases": len(mine),
            "outcomes": {o: n for o in outcome.OUTCOMES if (n := sum(c["outcome"] == o for c in mine))},
        }
        tries = [c["observed"] for c in mine if repeated(c.get("observed"))]
        if tries:
            # Cases that repeat an attempt (ACT-1, SUSP-1): how often it failed.
            entry["failure_rate"] = {"failures": sum(t["failures"] for t in tries),
                                     "attempts": sum(t["attempts"] for t in tries)}
        met = outcome.race_summary(mine)
        if met:
            # A known race (a conforming verdict then means: not seen this run).
            entry["intermittent"] = True
            entry["races"] = met
            failures = sum(r["failures"] for r in met.values())
            attempts = sum(r["attempts"] for r in met.values())
            entry["intermittent_rate"] = {
                "failures": failures, "attempts": attempts, "low": min(r["low"] for r in met.values()),
                "high": max(r["high"] for r in met.values()),
                "exceeded": any(r["decisions"].get("always") for r in met.values())}
        if rule.kind == "measure":
            entry["observed"] = {case_name(c): c.get("observed") for c in mine if c.get("observed") is not None}
        rules[rule.id] = entry
    return rules


def build(cases, catalog, mhd, duration_s, transports, baseline_path, volume=1, mutant=None, interrupted=False,
          shard=None, shards=None, shard_plan=None):
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
        "shard": shard,
        "shard_plan": shard_plan,
        "shards": shards,
        "gate": outcome.gate(cases, interrupted, str(baseline_path) if baseline_path else None),
        "false_alarm": {"per_run": outcome.RUN_FALSE_ALARM,
                        "race_cases": sum(1 for c in cases if c.get("race"))},
        "totals": {o: sum(c["outcome"] == o for c in cases) for o in outcome.OUTCOMES},
        "races": outcome.race_summary(cases),
        "cases": cases,
        "rules": aggregate(cases, catalog, transports),
        "interop": interop.table(cases),
        "warnings": [],
    }


def transports_text(results):
    """Which transports the run covered, in words (older results: from the cases)."""
    ran = results.get("transports") or sorted({c["transport"] for c in results["cases"] if c.get("transport")})
    return " and ".join(ran) or "no transport"


def verdict_of(results):
    """The run's gate verdict (older results: decided again from the cases)."""
    return results.get("gate") or outcome.gate(results["cases"], results.get("interrupted"), results.get("baseline"))


def _race_words(r):
    """How a rule met its known races this run, in a few words."""
    rate = r.get("intermittent_rate") or {}
    decisions = {}
    for race in (r.get("races") or {}).values():
        for d, n in race["decisions"].items():
            decisions[d] = decisions.get(d, 0) + n
    words = f"known race: {rate.get('failures', 0)}/{rate.get('attempts', 0)} attempts struck"
    if decisions.get("always"):
        words += f"; EVERY attempt in {decisions['always']} case(s)"
    if decisions.get("no-longer"):
        words += f"; not seen in enough attempts to say 'no longer' in {decisions['no-longer']} case(s)"
    return words


def summary_markdown(results, catalog):
    mhd = results["mhd"]
    t = results["totals"]
    verdict = verdict_of(results)
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
    lines += known_markdown(results)
    lines += interop.markdown(results)
    lines += facts.markdown(results, catalog)
    if results.get("confirmation"):
        lines += [f"## Confirmation reruns ({results['confirmation']['reruns']} each; the gate stays the run's)", ""]
        lines += [f"- {line}" for line in confirmation_lines(results["confirmation"])] + [""]
    lines += ["## Rules", "", "| Rule | Kind | State | Cases | Outcomes | Promise |", "|---|---|---|---|---|---|"]
    for rule_id in outcome.selected(results["rules"], results["cases"]):
        r = results["rules"][rule_id]
        outcomes = ", ".join(f"{n} {o}" for o, n in r["outcomes"].items())
        promise = catalog[rule_id].promise.replace("|", "\\|") if rule_id in catalog else ""
        if len(promise) > 90:
            promise = promise[:87] + "..."
        mine = [c for c in results["cases"] if rule_id in c["rules"]]
        symbol, words = STATES[outcome.state(mine)]
        if r.get("races"):
            words += f" ({_race_words(r)})"
        elif r.get("failure_rate", {}).get("failures"):
            words += f" ({rate_text(r['failure_rate'])})"
        lines.append(f"| {rule_id} | {r['kind']} | {symbol} {words} | {r['cases']} | {outcomes} | {promise} |")
    lines += ["", f"A known race fails the gate only when it struck every one of enough attempts of a case: the "
                  f"chance of that for a race within its recorded rates is at most "
                  f"{results.get('false_alarm', {}).get('per_run', outcome.RUN_FALSE_ALARM):.1%} per run."]
    return "\n".join(lines) + "\n"


def known_markdown(results):
    """The known deviations this run met, each baseline entry once: what
    MHD does, what an application does about it, and where it was seen."""
    entries = {}
    for c in results["cases"]:
        known = c.get("known")
        if known and c["verdict"] == "deviates":
            key = (known.get("race") or known.get("rule"), known.get("observed", ""))
            entries.setdefault(key, (known, []))[1].append(c)
    if not entries:
        return []
    lines = [f"## Known deviations, and what to do about them ({len(entries)})", "",
             "| Rule or race | What MHD does | Workaround | Cases |", "|---|---|---|---|"]
    for (name, _), (known, cases) in entries.items():
        cells = sorted({f"{c['mode'] and modes.lookup(c['mode']).name}-{c['transport']}" if c.get("mode") else "API"
                        for c in cases})
        where = ", ".join(cells[:6]) + (f" (+{len(cells) - 6} more)" if len(cells) > 6 else "")
        lines.append(f"| {name} | {_cell_text(known.get('observed', ''))} | "
                     f"{_cell_text(known.get('workaround') or 'not recorded')} | {len(cases)}: {where} |")
    return lines + [""]


def _cell_text(text):
    return " ".join(str(text).split()).replace("|", "\\|")


class Unreadable(ValueError):
    """A run's results.json that cannot be read; the message says which."""


def read(given):
    """(path, results) of a run given as its report folder or its
    results.json; Unreadable otherwise."""
    path = pathlib.Path(given)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Unreadable(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise Unreadable(f"{path} is not a results.json of ./conformance")
    return path, data


def write(report_dir, results, catalog):
    report_dir = pathlib.Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (report_dir / "summary.md").write_text(summary_markdown(results, catalog))
    (report_dir / "report.html").write_text(html_report.render(results, catalog))


def write_interrupted(report_dir, mhd, catalog, transports):
    """Every report of a run interrupted before any of its cases ran, each
    saying INTERRUPTED (junit.xml too, when pytest wrote none)."""
    data = build([], catalog, mhd, 0.0, transports, None, interrupted=True)
    write(report_dir, data, catalog)
    junit.write_empty(pathlib.Path(report_dir) / "junit.xml", f"upgrade-conformance MHD {mhd.get('version')}",
                      data["gate"]["headline"])
    return data


def terminal_lines(results):
    """Per family the rules by state, on the console: full IDs, to paste
    into --rule."""
    cases = results.get("cases", [])
    families = {}
    for rule_id, r in results["rules"].items():
        mine = [c for c in cases if rule_id in c["rules"]]
        if cases and not mine:
            continue  # not selected
        here = outcome.state(mine) if mine else {"deviates": "known"}.get(r["verdict"], r["verdict"])
        name = rule_id
        if r.get("races"):
            name += f" ({_race_words(r)})"
        elif r.get("failure_rate", {}).get("failures"):
            name += f" ({rate_text(r['failure_rate'])})"
        families.setdefault(rule_id.split("-")[1], {}).setdefault(here, []).append(name)
    out = []
    for fam, by_state in families.items():
        parts = [f"{outcome.HEADS[k]}: {' '.join(by_state[k])}" for k in STATES if k in by_state]
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
        out.append(f"  {case_name(case)} [{', '.join(case['rules'])}] {reason(case)}")  # whole: the reason is one line
    if len(bad) > most:
        out.append(f"  ... and {len(bad) - most} more (summary.md, results.json)")
    return out


RERUN_IDS = 20  # beyond this many, the rerun line names pytest's record of the last failures instead


def next_steps(data, rerun):
    """After a red run, what to do next: the command (`rerun`: how this run
    was started, without its selection) that runs exactly the cases that
    did not behave again, and, when some of them waited out a deadline,
    the factor that gives a slow or busy machine more time."""
    bad = problems_first([c for c in data.get("cases", []) if problem(c)])
    ids = [c["id"] for c in bad if c["id"].startswith("cases/")]  # not the pool's stop of a shared server
    if not ids:
        return []
    again = (" ".join(shlex.quote(i) for i in ids) if len(ids) <= RERUN_IDS
             else "--last-failed --last-failed-no-failures none")
    sep = " " if " -- " in f"{rerun} " else " -- "  # the cases go after the command's own --
    out = [f"next: rerun exactly the {len(ids)} case{'s' if len(ids) != 1 else ''} that did not behave: "
           f"{rerun}{sep}{again}"]
    waited_out = [c for c in bad if c.get("failure_kind") in WAITED]
    if waited_out:
        kinds = ", ".join(sorted({c["failure_kind"] for c in waited_out}))
        out.append(f"next: {len(waited_out)} of them waited out a deadline ({kinds}); on a slow or busy machine, "
                   f"give every wait more time: {FACTOR_ENV}=2 {rerun}{sep}{again}")
    out.append("next: what each one sent and received, and the server's events: report.html, at the case "
               "(pytest's whole traceback: add --tb=long after the --)")
    return out


def summary_lines(data, report, rc=None, rerun=None):
    """The console's end of a run (and of merged shards), as (line, what):
    totals, rules by state, where the reports are, the verdict ("verdict"),
    what did not behave, what to do next; "warning" lines stand out.
    `rc`: pytest's exit status when ./conformance ran it."""
    mhd = data.get("mhd") or {}
    totals = data.get("totals") or {}
    counts = ", ".join(f"{n} {o}" for o, n in totals.items() if n) or "no cases"
    yield f"conformance: MHD {mhd.get('version')} ({mhd.get('prefix')}), baseline: {data.get('baseline') or 'none'}", ""
    if data.get("mutant"):
        yield f"  MUTANT: {data['mutant']} (a self-test run: its failures are the mutant's, not MHD's)", ""
    yield (f"  {sum(totals.values())} cases over {transports_text(data)}"
           + (f" (volume x{data['volume']})" if data.get("volume", 1) != 1 else "") + f": {counts}"), ""
    if data.get("shard"):
        yield (f"  shard {data['shard']} of the selection: its gate is this part's only; "
               "./conformance merge joins the shards' reports into the run's"), ""
    if data.get("shards"):
        yield f"  merged from {len(data['shards'])} shards: {', '.join(s['shard'] for s in data['shards'])}", ""
    for line in terminal_lines(data):
        yield line, ""
    for line in data.get("warnings", []):
        yield f"WARNING: {line}", "warning"
    yield "reports:", ""
    for name in ("results.json", "summary.md", "junit.xml", "report.html"):
        yield f"  {pathlib.Path(report) / name}", ""
    verdict = verdict_of(data)
    if rc in (None, 0, 1) or data.get("interrupted"):
        yield f"conformance: {verdict['headline']}", "verdict"
    else:
        yield f"conformance: pytest exited with status {rc}; {verdict['headline']}", "verdict"
    for line in misbehaving_lines(data):
        yield line, ""
    for line in confirmation_lines(data.get("confirmation")):
        yield f"confirmed: {line}", ""
    for line in next_steps(data, rerun) if rerun else []:
        yield line, ""


def print_summary(data, report, rc, rerun=None):
    print()
    for line, _ in summary_lines(data, report, rc, rerun):
        print(line)
