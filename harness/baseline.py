"""Per-version baselines: which deviations an MHD version is known to have
(as data, with evidence) and which values its measure rules gave. A case
listed as a known deviation must still fail; a measure must equal its
recorded value.

File: baselines/<MHD version>.json
  {"schema": 1, "mhd_version": "0.9.75",
   "deviations": {"U-HDR-1": {"observed": "...", "evidence": "...",
                              "cases": ["test_name[*-plain]", ...],
                              "intermittent": false}},
   "measures": {"test_name[epoll-plain]": <value>, ...}}
An intermittent deviation may pass or fail; any other must fail.
Case patterns are the test name with its ids, where * and ? are wildcards
(brackets are literal: they belong to the ids)."""

import difflib
import functools
import json
import pathlib
import re

BASELINES = pathlib.Path(__file__).resolve().parent.parent / "baselines"
SCHEMA = 1


class BaselineError(Exception):
    pass


@functools.lru_cache(maxsize=None)
def _pattern(pat):
    return re.compile(re.escape(pat).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def matches(name, pat):
    return _pattern(pat).match(name) is not None


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
    def load(cls, path):
        path = pathlib.Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BaselineError(f"cannot read baseline {path}: {e}") from None
        if data.get("schema") != SCHEMA:
            raise BaselineError(f"baseline {path} has schema {data.get('schema')!r}; this suite reads schema {SCHEMA}")
        return cls(data, path)

    def expected_deviation(self, name, rules):
        """(rule, entry) if the case `name` checking `rules` is a known
        deviation, else None."""
        for rule in rules:
            entry = self.deviations.get(rule)
            if entry and any(matches(name, pat) for pat in entry.get("cases", [])):
                return rule, entry
        return None

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


def updated(baseline, cases):
    """The baseline data a run's `cases` (results.json records) call for.
    Entries about cases this run did not execute are kept as they were, and
    so is the reviewed text (observed, evidence) of rules still deviating."""
    ran = {case["id"].split("::")[-1] for case in cases if case["outcome"] not in ("skipped", "error")}
    deviations = {}
    for rule, entry in baseline.deviations.items():
        kept = [p for p in entry.get("cases", []) if not any(matches(n, p) for n in ran)]
        if kept:
            deviations[rule] = dict(entry, cases=kept)
    measures = {k: v for k, v in baseline.measures.items() if k not in ran}
    for case in cases:
        name = case["id"].split("::")[-1]
        if name not in ran:
            continue
        if case.get("observed") is not None and case.get("kind") == "measure":
            measures[name] = case["observed"]
        if case["verdict"] != "deviates" or case.get("kind") == "measure":
            continue
        for rule in case["rules"]:
            old = baseline.deviations.get(rule, {})
            entry = deviations.setdefault(rule, {
                "observed": old.get("observed") or case.get("summary", ""),
                "evidence": old.get("evidence") or f"{name}: {case.get('summary', '')}",
                "cases": [],
            })
            entry["cases"].append(name)
    for entry in deviations.values():
        entry["cases"] = sorted(set(entry["cases"]))
    return {"schema": SCHEMA, "mhd_version": baseline.version,
            "deviations": dict(sorted(deviations.items())), "measures": dict(sorted(measures.items()))}


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
