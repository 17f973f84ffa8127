"""Per-version baselines: which deviations an MHD version is known to have
(as data, with evidence) and which values its measure rules gave. A case
listed as a known deviation must still fail, and fail as the entry's
signature says; a measure must equal its recorded value.

File: baselines/<MHD version>.json
  {"schema": 2, "mhd_version": "0.9.75",
   "deviations": {"U-HDR-1": {
       "observed": "one line: what MHD does",
       "evidence": "what the suite saw, and where in MHD",
       "signatures": [{"kind": "assertion", "pattern": "MHD sent 'HTTP/1.1 101"}],
       "cases": ["test_name[*-plain]", ...],
       "intermittent": {"max_failure_rate": 0.3, "min_attempts": 20}}},
   "measures": {"test_name[epoll-plain]": <value>, ...}}
A rule's value may also be a list of such entries, when its cases deviate
in different ways (strictly in some cells, now and then in others).
A signature is a failure kind (harness/outcome.py: assertion, wire,
timeout, measure, leak, server-death) and a regular expression that the
failure's one-line summary must contain. An intermittent entry's cases may
pass or fail, but over a run no more than max_failure_rate of their
attempts may fail (judged once there are min_attempts); any other entry's
cases must fail. Case patterns are the test name with its ids, where * and
? are wildcards (brackets are literal: they belong to the ids).
Standard library only."""

import difflib
import functools
import json
import pathlib
import re

from . import ROOT, outcome

BASELINES = ROOT / "baselines"
SCHEMA = 2


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


def check_entry(rule, entry, where):
    """Raises BaselineError if a deviation entry cannot gate anything."""
    sigs = entry.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise BaselineError(f"{where}: {rule} has no failure signatures (a list of {{kind, pattern}}); "
                            "a known deviation must say how it fails")
    for sig in sigs:
        if sig.get("kind") not in outcome.KINDS:
            raise BaselineError(f"{where}: {rule}: signature kind {sig.get('kind')!r} is not one of "
                                f"{', '.join(outcome.KINDS)}")
        try:
            re.compile(sig.get("pattern", ""))
        except re.error as e:
            raise BaselineError(f"{where}: {rule}: signature pattern {sig.get('pattern')!r}: {e}") from None
    bound = entry.get("intermittent")
    if bound and not (isinstance(bound, dict) and 0 < bound.get("max_failure_rate", 0) <= 1
                      and isinstance(bound.get("min_attempts"), int) and bound["min_attempts"] >= 1):
        raise BaselineError(f"{where}: {rule}: 'intermittent' must be {{\"max_failure_rate\": 0 < r <= 1, "
                            f"\"min_attempts\": n >= 1}}, not {bound!r}")


class Baseline:
    def __init__(self, data, path):
        self.path = path
        self.data = data
        self.version = data.get("mhd_version")
        self.deviations = data.get("deviations", {})
        self.measures = data.get("measures", {})

    @classmethod
    def empty(cls, version, path=None):
        return cls({"schema": SCHEMA, "mhd_version": version, "deviations": {}, "measures": {}}, path)

    @classmethod
    def load(cls, path, migrate=False):
        """Reads and checks a baseline file; with `migrate`, a schema 1 file
        (no signatures: nothing it lists can match) is read for
        --update-baseline to rewrite."""
        path = pathlib.Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BaselineError(f"cannot read baseline {path}: {e}") from None
        if not isinstance(data, dict):
            raise BaselineError(f"baseline {path} is not a JSON object")
        if data.get("schema") == 1 and migrate:
            # No signatures yet; an intermittent flag becomes a bound that
            # allows everything, for the reviewer to narrow.
            data = dict(data, schema=SCHEMA, deviations={
                rule: dict(entry, signatures=[],
                           intermittent={"max_failure_rate": 1.0, "min_attempts": 1} if entry.get("intermittent")
                           else None)
                for rule, entry in data.get("deviations", {}).items()})
            return cls(data, path)
        if data.get("schema") != SCHEMA:
            hint = (" (schema 1 has no failure signatures: rewrite it from a run with --update-baseline, then "
                    "review it)" if data.get("schema") == 1 else "")
            raise BaselineError(f"baseline {path} has schema {data.get('schema')!r}; this suite reads schema "
                                f"{SCHEMA}{hint}")
        for rule, value in data.get("deviations", {}).items():
            for entry in entries(value):
                check_entry(rule, entry, path)
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
                                   intermittent=bool(entry.get("intermittent")))

    def measure(self, name):
        """(True, value) if the baseline records a value for case `name`."""
        if name in self.measures:
            return True, self.measures[name]
        return False, None


def for_version(version):
    path = BASELINES / f"{version}.json"
    if path.exists():
        return Baseline.load(path)
    return Baseline.empty(version, path)


def signature_for(kind, summary):
    """A proposed signature for a failure: its kind, and its summary with
    numbers, hex strings and quoted bytes left open."""
    text = re.escape(summary[:160])
    text = re.sub(r"b'(?:[^'\\]|\\\\.)*'", "b'.*'", text)
    text = re.sub(r"[0-9a-f]{8,}", "[0-9a-f]+", text)
    text = re.sub(r"\d+(?:\\\.\d+)?", r"\\d+(?:\\.\\d+)?", text)
    return {"kind": kind, "pattern": text}


def proposed_bound(old, failures, attempts):
    """The bound an intermittent entry should carry after a run that saw
    `failures` of `attempts`: the old one, widened to twice this run's rate
    if that is higher (a reviewer tightens it with more runs' evidence)."""
    seen = failures / attempts if attempts else 0.0
    rate = max((old or {}).get("max_failure_rate", 0.0), min(1.0, round(2 * seen + 0.05, 2)))
    return {"max_failure_rate": rate, "min_attempts": (old or {}).get("min_attempts", max(1, min(attempts, 20)))}


def updated(baseline, cases):
    """The baseline data a run's `cases` (results.json records) call for.
    Entries about cases this run did not execute are kept as they were, and
    so are the reviewed text (observed, evidence), the signatures that still
    match and the intermittent flag of rules still deviating; a failure no
    signature matches gets a proposed one, an intermittent entry a proposed
    bound."""
    ran = {case["id"].split("::")[-1] for case in cases if case["outcome"] not in ("skipped", "error")}
    deviations = {}  # rule -> [entry]
    for rule, value in baseline.deviations.items():
        for entry in entries(value):
            # An intermittent entry keeps its cases that passed this time.
            kept = [p for p in entry.get("cases", []) if entry.get("intermittent")
                    or not any(matches(n, p) for n in ran)]
            if kept or entry.get("intermittent"):
                deviations.setdefault(rule, []).append(
                    dict(entry, cases=kept, signatures=list(entry.get("signatures") or [])))
    measures = {k: v for k, v in baseline.measures.items() if k not in ran}
    for case in cases:
        name = case["id"].split("::")[-1]
        if name not in ran:
            continue
        if case.get("observed") is not None and case.get("kind") == "measure":
            measures[name] = case["observed"]
        if case["verdict"] != "deviates" or case.get("failure_kind") == "measure":
            continue
        for rule in case["rules"]:
            known = baseline.expected_deviation(name, [rule])
            mine = deviations.setdefault(rule, [])
            entry = next((e for e in mine if known and e.get("observed") == known[1].get("observed")), None)
            if entry is None:
                entry = mine[0] if mine else None
            if entry is None:
                entry = {"observed": case.get("summary", ""), "evidence": f"{name}: {case.get('summary', '')}",
                         "signatures": [], "cases": []}
                mine.append(entry)
            entry["cases"].append(name)
            kind, summary = case.get("failure_kind"), case.get("summary", "")
            expect = outcome.Expectation(rule, baseline.version, signatures=entry["signatures"])
            if kind in outcome.KINDS and not expect.matches(kind, summary):
                entry["signatures"].append(signature_for(kind, summary))
    out = {}
    for rule, mine in sorted(deviations.items()):
        for entry in mine:
            entry["cases"] = sorted(set(entry["cases"]))
            if entry.get("intermittent"):
                listed = [c for c in cases if any(matches(c["id"].split("::")[-1], p) for p in entry["cases"])]
                entry["intermittent"] = proposed_bound(entry["intermittent"], *outcome.rate(listed))
            else:
                entry.pop("intermittent", None)
        mine = [e for e in mine if e["cases"]]
        if mine:
            out[rule] = mine[0] if len(mine) == 1 else mine
    return {"schema": SCHEMA, "mhd_version": baseline.version,
            "deviations": out, "measures": dict(sorted(measures.items()))}


def write_updated(baseline, cases, out=print):
    """Shows the diff, then writes the baseline file."""
    new = updated(baseline, cases)
    new_text = json.dumps(new, indent=2, sort_keys=False) + "\n"
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
    return True
