"""./conformance merge SHARD [SHARD ...] [--report DIR]: the shards of one
run (./conformance --shard K/N, each on its own machine or CI job) joined
into that run's reports and gate, as the run unsharded would give them.
Standard library only."""

import argparse
import json
import pathlib
import xml.etree.ElementTree as ET

from .. import ROOT, catalog
from ..reports import results
from .failure import Fail, say

DEFAULT_REPORT = ROOT / "reports" / "merged"

DESCRIPTION = """\
./conformance merge SHARD [SHARD ...] [--report DIR]: joins the reports of
the N shards of one run (./conformance --shard K/N ... --report SHARD, the
same options in every shard) into the run's results.json, summary.md,
junit.xml and report.html, with the gate and the exit status the run
unsharded would have had. A SHARD is a shard's report folder or its
results.json."""

EPILOG = """\
Every shard must be there once (1/N to N/N), against the same MHD version,
baseline, mutant, volume and transports; anything else is refused before
a report is written.

Exit status: 0 every case behaved as the baseline says; 1 some case did
not, or a shard was interrupted; 2 usage error, or the shards do not make
one run (one missing or given twice, different MHD versions or options);
3 a shard's results.json cannot be read."""


def _load(arg):
    try:
        return results.read(arg)
    except results.Unreadable as e:
        raise Fail(str(e), 3) from None


def _check(shards):
    """The shards as one run, or Fail naming what to fix."""
    specs = []
    for path, data in shards:
        spec = data.get("shard")
        if not spec:
            raise Fail(f"{path}: not a shard (its run had no --shard K/N); merge takes the shards of one run", 2)
        k, n = (int(x) for x in spec.split("/"))
        specs.append((k, n, path))
    counts = {n for _, n, _ in specs}
    if len(counts) != 1:
        raise Fail(f"the shards come from splits into different numbers of parts: {sorted(counts)}", 2)
    n = counts.pop()
    seen = {}
    for k, _, path in specs:
        if k in seen:
            raise Fail(f"shard {k}/{n} given twice: {seen[k]} and {path}", 2)
        seen[k] = path
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in seen]
    if missing:
        raise Fail(f"shard {', '.join(missing)} missing: run ./conformance --shard K/{n} with the same "
                      "options for each, then give every shard's report folder", 2)
    first_path, first = shards[0]
    for what, key in (("MHD version", lambda d: (d.get("mhd") or {}).get("version")),
                      ("baseline", lambda d: pathlib.Path(d["baseline"]).name if d.get("baseline") else None),
                      ("mutant", lambda d: d.get("mutant")), ("volume", lambda d: d.get("volume", 1)),
                      ("transports", lambda d: sorted(d.get("transports") or []))):
        for path, data in shards[1:]:
            if key(data) != key(first):
                raise Fail(f"the shards are not of one run: {what} {key(first)!r} in {first_path}, "
                              f"{key(data)!r} in {path}", 2)
    plans = {json.dumps(d.get("shard_plan"), sort_keys=True) for _, d in shards}
    if len(plans) != 1:
        raise Fail("the shards were cut differently (another selection, or other durations in "
                      "build/durations/): give every shard the same options and the same durations file, "
                      "or none", 2)
    ids = {}
    for path, data in shards:
        for case in data["cases"]:
            if case["id"] in ids:
                raise Fail(f"{case['id']} ran in two shards ({ids[case['id']]} and {path}): the shards "
                              "were not cut from one selection", 2)
            ids[case["id"]] = path
    plan = first.get("shard_plan") or {}
    if plan.get("cases") is not None and len(ids) != plan["cases"]:
        raise Fail(f"the shards hold {len(ids)} cases of a selection of {plan['cases']}: a shard "
                      "stopped before its collection ended, or its results.json is not its last", 2)


def merged(shards):
    """The run's results from its shards' (checked)."""
    _check(shards)
    first = shards[0][1]
    cases = [case for _, data in shards for case in data["cases"]]
    data = results.build(cases, catalog.load(), first["mhd"], max(d.get("duration_s", 0) for _, d in shards),
                         first.get("transports") or [], first.get("baseline"), volume=first.get("volume", 1),
                         mutant=first.get("mutant"), interrupted=any(d.get("interrupted") for _, d in shards),
                         shards=[{"shard": d["shard"], "duration_s": d.get("duration_s"), "from": str(p)}
                                 for p, d in sorted(shards, key=lambda s: int(s[1]["shard"].split("/")[0]))])
    data["warnings"] = list(dict.fromkeys(w for _, d in shards for w in d.get("warnings", [])))
    # Each shard ran on its own machine: its provenance, in shard order.
    data["provenance"] = [d.get("provenance") for _, d in sorted(shards, key=lambda s: int(s[1]["shard"].split("/")[0]))]
    return data


def merge_junit(paths):
    """One testsuite with every shard's test cases (counts summed); the
    gate's properties are the merged run's. Shards without junit.xml are
    left out of it."""
    suite = ET.Element("testsuite", name="pytest")
    totals = {"tests": 0, "errors": 0, "failures": 0, "skipped": 0}
    seconds = 0.0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        for part in ([root] if root.tag == "testsuite" else root.findall("testsuite")):
            for name in totals:
                totals[name] += int(part.get(name, 0))
            seconds = max(seconds, float(part.get("time", 0)))
            suite.extend(part.findall("testcase"))
    for name, value in totals.items():
        suite.set(name, str(value))
    suite.set("time", f"{seconds:.3f}")
    return suite


def main(argv):
    parser = argparse.ArgumentParser(prog="conformance merge", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shard", nargs="+", metavar="SHARD", help="a shard's report folder or results.json")
    parser.add_argument("--report", metavar="DIR", default=str(DEFAULT_REPORT),
                        help=f"folder for the merged reports (default: {DEFAULT_REPORT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    try:
        shards = [_load(a) for a in args.shard]
        data = merged(shards)
    except Fail as e:
        say(str(e), "merge")
        return e.code
    report = pathlib.Path(args.report).resolve()
    try:
        results.write(report, data, catalog.load())
        suite = merge_junit([p.parent / "junit.xml" for p, _ in shards])
        props = ET.Element("properties")
        ET.SubElement(props, "property", name="gate", value=data["gate"]["headline"])
        ET.SubElement(props, "property", name="interrupted", value=str(data["interrupted"]).lower())
        suite.insert(0, props)
        tree = ET.ElementTree(ET.Element("testsuites"))
        tree.getroot().append(suite)
        tree.write(report / "junit.xml", encoding="utf-8", xml_declaration=True)
    except OSError as e:
        say(f"cannot write {report}: {e} (give a writable --report)", "merge")
        return 2
    results.print_summary(data, report, 0 if data["gate"]["passed"] else 1)
    return 0 if data["gate"]["passed"] else 1
