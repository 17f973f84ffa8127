"""Per-version baselines: which deviations an MHD version is known to have
(as data, with evidence), which races it is known to run into, and which
values its measure rules gave. A case listed as a known deviation must
still fail, and fail as the entry's signature says; a case that can meet a
known race is judged by the race's rates (harness/outcome.py); a measure
must equal its recorded value.

File: baselines/<MHD version>.json (schema 3)
  {"schema": 3, "mhd_version": "0.9.75",
   "deviations": {"U-HDR-1": {
       "observed": "one line: what MHD does",
       "workaround": "what an application should do about it",
       "evidence": "what the suite saw, and where in MHD",
       "signatures": [{"kind": "assertion", "pattern": "MHD sent 'HTTP/1.1 101"}],
       "cases": ["test_name[*-plain]", ...]}},
   "races": {"tls-close-stall": {
       "observed": "...", "workaround": "...", "evidence": "...",
       "cells": ["epoll-https", "pool-https", "tpc-https"],
       "rules": ["U-ACT-1", "U-ACT-2", "U-NOTIFY-1"],
       "signatures": [{"kind": "stall", "pattern": "no end of the stream"}],
       "rates": {"low": 0.05, "high": 0.7},
       "runs": [[12, 61], [30, 88]]}},
   "measures": {"test_name[epoll-plain]": <value>, ...}}
A rule's deviation value may also be a list of entries, when its cases
deviate in different ways. A signature is a failure kind (outcome.KINDS)
and a regular expression that the failure's one-line summary must contain.
Every entry, deviation or race, has a reviewed `workaround`: what an
application using that MHD version should do about it (which call, which
flag or mode to prefer or avoid, what not to rely on), or "None in the
application: ..." and what that means; a new entry gets an empty one
(WORKAROUND_TO_WRITE), which only a rewrite (`migrate`) reads.
A race's cells are MODE-TRANSPORT patterns; its rates, the range of its
rate per attempt that the pairs in `runs` (failures, attempts) support: one
pair per case that met the race in a run (older entries hold one pair per
run). Per case, because a case's 'always' is judged against it and the rate
differs from case to case: U-NOTIFY-1, one CLOSE after data, met 1.0.10's
tls-close-stall in 15 of 16 attempts on one core, where U-ACT-1's fifty
CLOSEs a case meet it in about one of seven. Case patterns are the test name with its
ids, where * and ? are wildcards (brackets are literal: they belong to the
ids). Schema 2 files read as schema 3 when they have no intermittent
entry (those became races). Standard library only."""

import difflib
import functools
import json
import pathlib
import re

from . import ROOT, outcome

BASELINES = ROOT / "baselines"
SCHEMA = 3
RANGE_CONFIDENCE = 0.99  # each pair's rate interval, for the proposed range of a race
MAX_RUNS_KEPT = 400  # pairs (failures, attempts) kept per race, the newest: some ten runs
WORKAROUND_TO_WRITE = ""  # a new entry's workaround, until someone writes it


class BaselineError(Exception):
    pass


@functools.lru_cache(maxsize=None)
def _pattern(pat):
    return re.compile(re.escape(pat).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def matches(name, pat):
    return _pattern(pat).match(name) is not None


def entries(value):
    """A rule's deviation entries: one object, or a list of them."""
    return value if isinstance(value, list) else [value]


def _check_signatures(what, sigs, where):
    if not isinstance(sigs, list) or not sigs:
        raise BaselineError(f"{where}: {what} has no failure signatures (a list of {{kind, pattern}}); "
                            "a known deviation must say how it fails")
    for sig in sigs:
        if sig.get("kind") not in outcome.KINDS:
            raise BaselineError(f"{where}: {what}: signature kind {sig.get('kind')!r} is not one of "
                                f"{', '.join(outcome.KINDS)}")
        try:
            re.compile(sig.get("pattern", ""))
        except re.error as e:
            raise BaselineError(f"{where}: {what}: signature pattern {sig.get('pattern')!r}: {e}") from None


def check_entry(rule, entry, where):
    """Raises BaselineError if a deviation entry cannot gate anything."""
    _check_signatures(rule, entry.get("signatures"), where)
    if "intermittent" in entry:
        raise BaselineError(f"{where}: {rule}: 'intermittent' entries became races (schema 3): rewrite the file "
                            "with ./conformance --update-baseline, then review its 'races'")


def check_race(name, race, where):
    """Raises BaselineError if a race entry cannot be judged."""
    _check_signatures(f"race {name}", race.get("signatures"), where)
    for key in ("cells", "rules"):
        if not isinstance(race.get(key), list) or not race[key] or not all(isinstance(x, str) for x in race[key]):
            raise BaselineError(f"{where}: race {name}: '{key}' must be a non-empty list of strings")
    rates = race.get("rates")
    if not (isinstance(rates, dict) and 0 <= rates.get("low", -1) <= rates.get("high", -1) <= 1):
        raise BaselineError(f"{where}: race {name}: 'rates' must be {{\"low\": l, \"high\": h}} with "
                            f"0 <= l <= h <= 1, not {rates!r}")


def check_workaround(what, entry, where):
    """Raises BaselineError unless an entry of a version baseline says
    what an application should do about it (not asked of
    baselines/clients.json: a client's behaviour is not the
    application's to work around)."""
    if not has_workaround(entry):
        raise BaselineError(f"{where}: {what} has no 'workaround': write one (a non-empty string, after "
                            "'observed': what an application using this MHD version should do about it, or "
                            "'None in the application: ...'), then review it")


def has_workaround(entry):
    text = entry.get("workaround")
    return isinstance(text, str) and bool(text.strip())


def with_workaround(entry):
    """The entry with a 'workaround' after 'observed' (WORKAROUND_TO_WRITE
    if it had none), its other fields in their order."""
    if "workaround" in entry:
        return entry
    out = {}
    for key, value in entry.items():
        out[key] = value
        if key == "observed":
            out["workaround"] = WORKAROUND_TO_WRITE
    out.setdefault("workaround", WORKAROUND_TO_WRITE)
    return out


def _cells_of(patterns):
    """The MODE-TRANSPORT cells named by case patterns ('test_x[epoll-https]'
    -> 'epoll-https'; 'test_x[*-https-*]' -> '*-https')."""
    out = []
    for pat in patterns:
        m = re.search(r"\[([^\]]*?-(?:plain|https|\*))(?:-[^\]]*)?\]", pat)
        cell = m.group(1) if m else "*"
        if cell not in out:
            out.append(cell)
    return out


def _migrated(data, schema):
    """A schema 1 or 2 file as schema 3, for --update-baseline to rewrite:
    schema 1 entries have no signatures (nothing they list can match: each
    must be looked at); intermittent entries become races with the bound
    as their highest rate."""
    deviations, races = {}, dict(data.get("races", {}))
    for rule, value in data.get("deviations", {}).items():
        kept = []
        for i, entry in enumerate(entries(value)):
            entry = dict(entry, signatures=entry.get("signatures", []) if schema != 1 else [])
            bound = entry.pop("intermittent", None)
            if bound:
                high = bound.get("max_failure_rate", 1.0) if isinstance(bound, dict) else 1.0
                races[f"{rule.lower()}-{i + 1}"] = {
                    "observed": entry.get("observed", ""),
                    "workaround": entry.get("workaround", WORKAROUND_TO_WRITE),
                    "evidence": entry.get("evidence", ""),
                    "cells": _cells_of(entry.get("cases", [])), "rules": [rule],
                    "signatures": entry["signatures"], "rates": {"low": 0.0, "high": high}, "runs": []}
            else:
                kept.append(entry)
        if kept:
            deviations[rule] = kept[0] if len(kept) == 1 else kept
    return dict(data, schema=SCHEMA, deviations=deviations, races=races)


class Baseline:
    def __init__(self, data, path):
        self.path = path
        self.data = data
        self.version = data.get("mhd_version")
        self.deviations = data.get("deviations", {})
        self.races = data.get("races", {})
        self.measures = data.get("measures", {})

    @classmethod
    def empty(cls, version, path=None):
        return cls({"schema": SCHEMA, "mhd_version": version, "deviations": {}, "races": {}, "measures": {}}, path)

    @classmethod
    def load(cls, path, migrate=False):
        """Reads and checks a baseline file; with `migrate`, an older schema
        (and entries whose workaround is still to write) is read for
        --update-baseline to rewrite."""
        path = pathlib.Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BaselineError(f"cannot read baseline {path}: {e}") from None
        if not isinstance(data, dict):
            raise BaselineError(f"baseline {path} is not a JSON object")
        schema = data.get("schema")
        intermittent = any("intermittent" in e for v in data.get("deviations", {}).values() for e in entries(v))
        if schema in (1, 2) and migrate:
            return cls(_migrated(data, schema), path)
        if schema == 2 and not intermittent:
            data = dict(data, schema=SCHEMA)  # schema 3 adds races; nothing else changed
        if data.get("schema") != SCHEMA:
            hint = (" (schema 1 has no failure signatures: rewrite it from a run with --update-baseline, then "
                    "review it)" if schema == 1 else
                    " (its intermittent entries became races: rewrite it with --update-baseline, then review "
                    "its 'races')" if schema == 2 else "")
            raise BaselineError(f"baseline {path} has schema {schema!r}; this suite reads schema {SCHEMA}{hint}")
        for rule, value in data.get("deviations", {}).items():
            for entry in entries(value):
                check_entry(rule, entry, path)
                if not migrate:
                    check_workaround(rule, entry, path)
        for name, race in data.get("races", {}).items():
            check_race(name, race, path)
            if not migrate:
                check_workaround(f"race {name}", race, path)
        return cls(data, path)

    def expected_deviation(self, name, rules):
        """(rule, entry) if the case `name` checking `rules` is a known
        deviation, else None."""
        for rule in rules:
            for entry in entries(self.deviations.get(rule) or []):
                if any(matches(name, pat) for pat in entry.get("cases", [])):
                    return rule, entry
        return None

    def expectation(self, name, rules):
        """The outcome.Expectation of case `name`, or None."""
        known = self.expected_deviation(name, rules)
        if not known:
            return None
        rule, entry = known
        return outcome.Expectation(rule=rule, version=self.version, observed=entry.get("observed", ""),
                                   evidence=entry.get("evidence", ""), signatures=entry.get("signatures") or [],
                                   workaround=entry.get("workaround", ""))

    def race(self, rules, cell):
        """The outcome.Race a case of `rules` in `cell` can meet, or None."""
        for name, entry in self.races.items():
            race = race_of(name, entry, self.version)
            if race.applies(rules, cell):
                return race
        return None

    def measure(self, name):
        """(True, value) if the baseline records a value for case `name`."""
        if name in self.measures:
            return True, self.measures[name]
        return False, None


def race_of(name, entry, version):
    rates = entry.get("rates") or {}
    return outcome.Race(name=name, version=version, cells=entry.get("cells", []), rules=entry.get("rules", []),
                        signatures=entry.get("signatures", []), low=rates.get("low", 0.0),
                        high=rates.get("high", 1.0), observed=entry.get("observed", ""),
                        evidence=entry.get("evidence", ""), workaround=entry.get("workaround", ""))


def signature_for(kind, summary):
    """A proposed signature for a failure: its kind, and its summary with
    numbers, hex strings and quoted bytes left open."""
    text = re.escape(summary[:160]).replace("\\ ", " ")
    text = re.sub(r"b'(?:[^'\\]|\\\\.)*'", "b'.*'", text)
    text = re.sub(r"[0-9a-f]{8,}", "[0-9a-f]+", text)
    text = re.sub(r"\d+(?:\\\.\d+)?", r"\\d+(?:\\.\\d+)?", text)
    return {"kind": kind, "pattern": text}


def proposed_rates(runs):
    """The range of a race's rate per attempt that runs [(failures,
    attempts)] support: the lowest and highest bounds of each run's
    RANGE_CONFIDENCE Clopper-Pearson interval (runs under load included:
    they are what a busy machine sees)."""
    bounds = [outcome.rate_interval(f, a, RANGE_CONFIDENCE) for f, a in runs if a]
    if not bounds:
        return {"low": 0.0, "high": 1.0}
    return {"low": round(min(b[0] for b in bounds), 4), "high": round(max(b[1] for b in bounds), 4)}


def _name(case):
    return case["id"].split("::")[-1]


def updated(baseline, runs):
    """The baseline data that `runs` (each a list of results.json case
    records of one run of the same MHD) call for. Entries about cases no
    run executed are kept as they were, and so are the reviewed text
    (observed, workaround, evidence), the signatures that still match, the
    races' cells, rules and signatures; an entry without a workaround (a
    new one too) gets WORKAROUND_TO_WRITE, which Baseline.load refuses
    until someone writes one. A case that deviated (not as a known race)
    in every run that executed it is a known deviation; one that deviated
    in some runs only becomes a proposed race of its own (review its cells
    and rules). Each race's rates are proposed from its runs, these ones
    added."""
    if runs and isinstance(runs[0], dict):
        runs = [runs]  # one run's cases
    everything = [c for run in runs for c in run]
    ran = {_name(c) for c in everything if c["outcome"] not in ("skipped", "error")}
    measures = {k: v for k, v in baseline.measures.items() if k not in ran}
    races = {name: with_workaround(dict(entry, runs=list(entry.get("runs") or [])))
             for name, entry in baseline.races.items()}
    decided = {}  # case name -> [case record per run that decided it], outside the known races
    for case in everything:
        name = _name(case)
        if name not in ran:
            continue
        if case.get("observed") is not None and case.get("kind") == "measure":
            measures[name] = case["observed"]
        if case.get("race") is None and case["verdict"] in ("deviates", "conforms"):
            decided.setdefault(name, []).append(case)

    def deviated(case):
        return case["verdict"] == "deviates" and case.get("failure_kind") != "measure"
    always = {name: seen[0] for name, seen in decided.items() if all(deviated(c) for c in seen)}
    # Known deviations: a pattern stays while every case it names that ran
    # still deviates; otherwise it narrows to the cases that do.
    deviations = {}  # rule -> [entry]
    for rule, value in baseline.deviations.items():
        for entry in entries(value):
            cases = []
            for pat in entry.get("cases", []):
                hit = [n for n in decided if matches(n, pat)]
                cases += [pat] if all(n in always for n in hit) else [n for n in hit if n in always]
            if cases:
                # The signatures that still match what its cases did (all of
                # them, if none of its cases ran).
                seen = [always[n] for n in always if any(matches(n, p) for p in cases)]
                sigs = [sig for sig in entry.get("signatures") or []
                        if not seen or any(_names([sig], f) for c in seen for f in _found(c))]
                deviations.setdefault(rule, []).append(with_workaround(dict(entry, cases=cases, signatures=sigs)))
    for name, case in sorted(always.items()):
        for rule in case["rules"]:
            mine = deviations.setdefault(rule, [])
            entry = (next((e for e in mine if any(matches(name, p) for p in e["cases"])), None)
                     or next((e for e in mine if _matches_case(e["signatures"], case)), None))
            if entry is None:
                entry = {"observed": case.get("summary", ""), "workaround": WORKAROUND_TO_WRITE,
                         "evidence": f"{name}: {case.get('summary', '')}", "signatures": [], "cases": []}
                mine.append(entry)
            if not any(matches(name, p) for p in entry["cases"]):
                entry["cases"].append(name)
            _add_signature(entry["signatures"], case)
    # A case that deviated in some runs only: a proposed race of its rule.
    proposed = {}
    for name, seen in decided.items():
        bad = [c for c in seen if deviated(c)]
        if not bad or name in always:
            continue
        case, rule = bad[0], bad[0]["rules"][0]
        entry = proposed.setdefault(rule, {
            "observed": f"now and then: {case.get('summary', '')}", "workaround": WORKAROUND_TO_WRITE,
            "evidence": f"{name}: deviated in {len(bad)} of {len(seen)} runs: {case.get('summary', '')}",
            "cells": [], "rules": [rule], "signatures": [], "rates": {}, "runs": []})
        cell = outcome.cell_of(case)
        if cell and cell not in entry["cells"]:
            entry["cells"].append(cell)
        _add_signature(entry["signatures"], case)
    known = set(races)
    for rule, entry in proposed.items():
        races[_free_name(races, f"{rule.lower()}-now-and-then")] = entry
    for name, entry in races.items():
        for run in runs:
            tallies = _race_tallies(run, name) if name in known else [_case_tally(run, entry)]
            entry["runs"] += [t for t in tallies if t[1]]
        entry["runs"] = entry["runs"][-MAX_RUNS_KEPT:]
        entry["rates"] = proposed_rates(entry["runs"]) if entry["runs"] else entry.get("rates") or {
            "low": 0.0, "high": 1.0}
    out = {}
    for rule, mine in sorted(deviations.items()):
        mine = [e for e in mine if e["cases"]]
        if mine:
            out[rule] = mine[0] if len(mine) == 1 else mine
    return {"schema": SCHEMA, "mhd_version": baseline.version, "deviations": out,
            "races": dict(sorted(races.items())), "measures": dict(sorted(measures.items()))}


def _race_tallies(run, name):
    """[failures, attempts] of a known race, one pair per case of one run
    that met it (see the module's docstring: why per case)."""
    return [[c["race"]["failures"], c["race"]["attempts"]] for c in run
            if (c.get("race") or {}).get("name") == name]


def _case_tally(run, entry):
    """[cases that deviated, cases that decided] of one run, in a proposed
    race's cells and rules: before it is a race, one case run is one attempt."""
    mine = [c for c in run if c.get("race") is None and outcome.cell_of(c) in entry["cells"]
            and set(c["rules"]) & set(entry["rules"]) and c["verdict"] in ("deviates", "conforms")]
    return [sum(c["verdict"] == "deviates" for c in mine), len(mine)]


def _found(case):
    """Every finding of a case (kind, summary), the decisive one first."""
    return case.get("findings") or [{"kind": case.get("failure_kind"), "summary": case.get("summary", "")}]


def _names(signatures, finding):
    return outcome.Expectation("", "", signatures=signatures).matches(finding["kind"], finding["summary"])


def _matches_case(signatures, case):
    """Whether `signatures` name the case's decisive finding."""
    return _names(signatures, _found(case)[0])


def _add_signature(signatures, case):
    """A proposed signature for each finding of the case none names yet."""
    for f in _found(case):
        if f["kind"] in outcome.KINDS and not _names(signatures, f):
            signatures.append(signature_for(f["kind"], f["summary"]))


def _free_name(taken, name):
    n, out = 1, name
    while out in taken:
        n += 1
        out = f"{name}-{n}"
    return out


def dumps(data):
    """A baseline's text: JSON indented by 2, a race's (failures, attempts)
    pairs one to a line (there is one per case and run)."""
    return re.sub(r"\[\s+(\d+),\s+(\d+)\s+\]", r"[\1, \2]", json.dumps(data, indent=2)) + "\n"


def write_updated(baseline, runs, out=print):
    """Shows the diff, then writes the baseline file."""
    new = updated(baseline, runs)
    new_text = dumps(new)
    old_text = baseline.path.read_text() if baseline.path and baseline.path.exists() else ""
    diff = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                     str(baseline.path), str(baseline.path) + " (new)", lineterm=""))
    if not diff:
        out(f"baseline {baseline.path}: unchanged")
        return False
    out("\n".join(diff))
    baseline.path.parent.mkdir(parents=True, exist_ok=True)
    baseline.path.write_text(new_text)
    out(f"baseline written: {baseline.path} (review it, then commit it)")
    todo = to_write(new)
    if todo:
        out(f"{len(todo)} entries have no workaround yet ({', '.join(todo)}): write each one's 'workaround' "
            "(what an application should do about it) before the baseline can gate a run")
    return True


def to_write(data):
    """The deviations (rule) and races (race NAME) of baseline data whose
    workaround is still WORKAROUND_TO_WRITE."""
    todo = [rule for rule, value in data.get("deviations", {}).items() for entry in entries(value)
            if not has_workaround(entry)]
    return todo + [f"race {name}" for name, race in data.get("races", {}).items() if not has_workaround(race)]
