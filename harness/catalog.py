"""The rule catalogue (spec/upgrade-rules.md, a copy of the project's shared
catalogue): rule IDs, families and kinds, read from its tables."""

import fnmatch
import pathlib
import re

from . import ROOT

SPEC = ROOT / "spec" / "upgrade-rules.md"

_ROW = re.compile(
    r"^\|\s*(U-[A-Z]+-\d+)\s*\|(?P<promise>.*)\|(?P<source>[^|]*)\|\s*(?P<kind>promise|contract|measure)\s*\|\s*$"
)


class Rule:
    def __init__(self, rule_id, promise, kind):
        self.id = rule_id
        self.family = rule_id.split("-")[1]
        self.promise = promise
        self.kind = kind

    def __repr__(self):
        return f"Rule({self.id}, {self.kind})"


def sort_key(rule_id):
    """Catalogue order: by family, then by number (U-ACT-2 before U-ACT-10)."""
    family, _, number = rule_id[2:].rpartition("-")
    return family, int(number) if number.isdigit() else 0


def load(path=SPEC):
    rules = {}
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            rules[m.group(1)] = Rule(m.group(1), m.group("promise").strip(), m.group("kind"))
    if not rules:
        raise RuntimeError(f"no rules found in {path}")
    return rules


def rule_patterns(raw, rules):
    """--rule values as shell patterns of rule IDs, and those that match no
    rule. A value may be a comma list; each item an ID or a pattern
    (U-EXTRA-1, U-EXTRA-*), a family (U-EXTRA, EXTRA), an ID without U-
    (EXTRA-1), in any case."""
    patterns, unmatched = [], []
    for value in raw:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            pat = item.upper()
            if not pat.startswith("U-"):
                pat = "U-" + pat
            if re.fullmatch(r"U-[A-Z]+", pat):
                pat += "-*"  # a family
            patterns.append(pat)
            if not any(fnmatch.fnmatchcase(r, pat) for r in rules):
                unmatched.append(item)
    return patterns, unmatched


def id_hint(rules):
    """What rule IDs look like, for a message about one that matches none."""
    families = sorted({r.split("-")[1] for r in rules})
    return ("rule IDs look like U-EXTRA-1 (or EXTRA-1, a family U-EXTRA, a pattern 'U-EXTRA-*'); families: "
            + " ".join(families))
