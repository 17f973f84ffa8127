"""The gate: what one case's run means, from its setup, call and teardown
phases and what the baseline expects of it. A pure function, so that every
branch has a unit test (tests/test_outcome.py); the pytest plugin feeds it
and writes what it decides into the reports and results.json.

outcome (the gate's view; `failed`, `error` and `unrecorded` fail it):
  passed, failed, expected-deviation, skipped, error, unrecorded
verdict (what MHD did, whatever the baseline says):
  conforms, deviates, untested (no case could decide: skipped, or a fault of
  the harness), measured (a measure with nothing to compare it with)

A failure has a kind, which a baseline's signature names:
  assertion     an assertion about what MHD's API returned or did
  wire          what reached the wire (bytes, framing, a reset, a TLS error)
  timeout       an event MHD should have made happen did not, in time
  measure       a measured value differs from the recorded one
  leak          the case left something open in a shared server
  server-death  the reference server died (a crash in MHD, say)
Any other exception is the harness's own fault: kind `harness`, outcome
`error`. Standard library only."""

import itertools
import re
from dataclasses import dataclass, field

KINDS = ("assertion", "wire", "timeout", "measure", "leak", "server-death")
FAILING = ("failed", "error", "unrecorded")


@dataclass
class Phase:
    """One phase of a case as pytest ran it."""
    when: str                 # setup, call, teardown
    status: str               # passed, failed, skipped
    kind: str = None          # a KINDS entry or "harness", when failed
    message: str = ""         # the exception's text, or the skip reason


@dataclass
class Expectation:
    """What the baseline says of a case: a known deviation of `rule`."""
    rule: str
    version: str
    observed: str = ""
    evidence: str = ""
    signatures: list = field(default_factory=list)  # [{"kind": ..., "pattern": ...}]
    intermittent: bool = False

    def matches(self, kind, summary):
        return any(s.get("kind") == kind and re.search(s.get("pattern", ""), summary)
                   for s in self.signatures)

    def describe(self):
        return " or ".join(f"{s.get('kind')}: /{s.get('pattern')}/" for s in self.signatures) or "no signature"


@dataclass
class Measure:
    """A measure case: whether a value was observed and recorded."""
    baseline_in_use: bool
    recorded: bool


# pytest's explanation of a failed `assert` (the compared values, then
# "+  where" lines): noise once the assertion has a message of its own.
_REWRITE = re.compile(r"^(assert |\s*[+-]  +(where|and) )")


def without_rewrite(message):
    """An assertion's text without pytest's rewritten comparison below the
    case's own message; a bare `assert` keeps its first line."""
    lines = (message or "").splitlines()
    keep = lines[:1] + list(itertools.takewhile(lambda l: not _REWRITE.match(l), lines[1:]))
    return "\n".join(keep)


def summary_of(message):
    """The one line that names a failure: the first line of the message,
    without the exception's class name."""
    text = (message or "").strip()
    first = text.splitlines()[0] if text else ""
    first = re.sub(r"^[\w.]*(Error|Exception|Timeout|Died|Mismatch|Failure|Reset): ", "", first, count=1)
    return first[:300]


def _failed(phases):
    """The failed phase that decides the case: the first, unless the
    server died during the case. Then the death is the fact (with its
    crash line) and what the call saw, a refused or reset connection, its
    consequence; the call's message is kept in the detail."""
    failed = [p for p in phases if p.status == "failed"]
    death = next((p for p in failed if p.kind == "server-death"), None)
    if death is not None and death is not failed[0] and failed[0].kind in KINDS:
        return Phase(death.when, "failed", death.kind,
                     f"{death.message}\nwhat the case saw first ({failed[0].when}): {failed[0].message}")
    return failed[0] if failed else None


def classify(phases, expected=None, measure=None):
    """{outcome, verdict, kind, summary, detail} for a case whose phases
    so far are `phases` (setup first), given the baseline's `expected`
    (an Expectation, or None) and, for a measure case, `measure`."""
    setup = phases[0]
    if setup.status == "skipped":
        return dict(outcome="skipped", verdict="untested", kind=None, summary="", detail=setup.message)
    bad = _failed(phases)
    if bad is not None and (bad.kind not in KINDS or bad.when == "setup"):
        # The harness could not run the case (or its server would not
        # start): nothing was learnt about MHD.
        return dict(outcome="error", verdict="untested", kind="harness", summary=summary_of(bad.message),
                    detail=f"{bad.when}: {bad.message}")
    if bad is not None:
        summary = summary_of(bad.message)
        if expected is None:
            return dict(outcome="failed", verdict="deviates", kind=bad.kind, summary=summary, detail=bad.message)
        if expected.matches(bad.kind, summary):
            return dict(outcome="expected-deviation", verdict="deviates", kind=bad.kind, summary=summary,
                        detail=f"baseline {expected.version}: {expected.rule} {expected.observed}\n"
                               f"observed: {bad.message}")
        return dict(outcome="failed", verdict="deviates", kind=bad.kind, summary=summary,
                    detail=f"The baseline ({expected.version}) expects {expected.rule} to deviate with "
                           f"{expected.describe()}; this run failed otherwise: {bad.kind}: {summary}\n"
                           f"{bad.message}")
    call_done = any(p.when == "call" for p in phases)
    if not call_done:
        return dict(outcome="passed", verdict="conforms", kind=None, summary="", detail="")  # setup only, so far
    if expected is not None and not expected.intermittent:
        return dict(outcome="failed", verdict="conforms", kind=None, summary="MHD kept the promise",
                    detail=f"The baseline ({expected.version}) lists this case as a known deviation of "
                           f"{expected.rule} ({expected.observed}), but MHD kept the promise: update the "
                           "baseline (./conformance --update-baseline).")
    if measure is not None:
        if not measure.recorded and measure.baseline_in_use:
            return dict(outcome="unrecorded", verdict="measured", kind=None,
                        summary="no value recorded in the baseline",
                        detail="The baseline in use records no value for this measure: record one with "
                               "./conformance --update-baseline, after reviewing it.")
        if not measure.recorded:
            return dict(outcome="passed", verdict="measured", kind=None, summary="", detail="")
    return dict(outcome="passed", verdict="conforms", kind=None, summary="", detail="")


def rate(cases):
    """(failures, attempts) over `cases` (results.json records of one
    baseline entry): a case that repeats an attempt counts each attempt."""
    failures = attempts = 0
    for case in cases:
        if case["outcome"] in ("skipped", "error"):
            continue
        observed = case.get("observed")
        if isinstance(observed, dict) and {"attempts", "failures"} <= observed.keys():
            attempts += observed["attempts"]
            failures += observed["failures"]
        else:
            attempts += 1
            failures += case["verdict"] == "deviates"
    return failures, attempts


def judge_rate(bound, failures, attempts):
    """None if the rate is within the entry's bound (or there are too few
    attempts to judge it); else why not."""
    if not bound or attempts < bound.get("min_attempts", 1):
        return None
    if failures > bound["max_failure_rate"] * attempts:
        return (f"{failures}/{attempts} attempts failed ({failures / attempts:.0%}); the baseline allows at most "
                f"{bound['max_failure_rate']:.0%}")
    return None
