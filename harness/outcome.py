"""Every verdict of the suite, decided here and nowhere else: what one
case's run means (from its phases and what the baseline expects of it), how
a known race is judged, the state of a cell, a rule and a run, and the
headline every report starts with. Pure functions on plain data, each
branch unit-tested (tests/test_outcome.py, tests/test_races.py); the pytest
plugin, the reports and the tools read their answers from here.

A case's outcome (the gate's view; `failed`, `error`, `unrecorded` fail it):
  passed, failed, expected-deviation, skipped, error, unrecorded
Its verdict (what MHD did, whatever the baseline says):
  conforms, deviates, untested (no case could decide: skipped, or a fault of
  the harness), measured (a measure with nothing to compare it with)

A failure has a kind, which a baseline's signature names:
  assertion     an assertion about what MHD's API returned or did
  wire          what reached the wire (malformed HTTP, a reset, a TLS error)
  stall         no byte moved for the quiet period (harness/streams.py)
  loss          the stream ended before all of it arrived
  changed       the bytes that arrived are not those sent
  slow          still moving when the total cap passed
  timeout       an event MHD should have made happen did not, in time
  measure       a measured value differs from the recorded one
  leak          the case left something open in a shared server
  server-death  the reference server died (a crash in MHD, say)
  no-stop       the reference server's daemon did not stop when asked
Any other exception is the harness's own fault: kind `harness`, outcome
`error`.

Known races (a baseline's `races`): an MHD race strikes some attempts and
not others, at a rate that depends on the machine and its load. A case in
a race's cells, of one of its rules, whose every failure matches the
race's signature, met the race. Such a case is attempted again (a fresh
run of the whole case) while every attempt so far failed as the race, until
the judgement decides, per case:
  not-seen    no attempt failed
  no-longer   no attempt failed, in enough attempts that the race at its
              lowest recorded rate would have struck (perhaps fixed; reported,
              it does not fail the gate)
  race        some attempts failed as the race, some did not: the known race
  always      the first `needed` attempts all failed: more than the race at
              its highest recorded rate `high` does (high**needed <= alpha),
              a new failure (a CLOSE that does nothing, say); fails the gate.
              When `needed` would be over MAX_ATTEMPTS (rates near 1), no
              case decides it: a failure as the race is the race
  undecided   every attempt failed but fewer than `needed` ran (the time
              budget or an interruption ended them): fails the gate as an
              error, with what was seen
alpha, the false-alarm probability of one case, is RUN_FALSE_ALARM divided
by the number of race cases in the run (a union bound): whatever the rate
of a race within its recorded range, a run fails a case as 'always' with
probability at most RUN_FALSE_ALARM. Standard library only."""

import fnmatch
import itertools
import math
import re
from dataclasses import dataclass, field

KINDS = ("assertion", "wire", "stall", "loss", "changed", "slow", "timeout", "measure", "leak", "server-death",
         "no-stop")
OUTCOMES = ("passed", "failed", "expected-deviation", "unrecorded", "skipped", "error")
FAILING = ("failed", "error", "unrecorded")  # the outcomes that fail the gate (and kill a mutant)
RUN_FALSE_ALARM = 0.001  # per run: the chance that a known race within its recorded rates fails the gate
# The most attempts one case makes at a known race (a run of U-ACT-1 makes
# up to 50; a case that attempts once a run, one): a race whose rates need
# more to be told from 'always' cannot be, in one case.
MAX_ATTEMPTS = 100


# -- one case ----------------------------------------------------------------
@dataclass
class Phase:
    """One phase of a case as pytest ran it."""
    when: str                 # setup, call, teardown
    status: str               # passed, failed, skipped
    kind: str = None          # a KINDS entry or "harness", when failed
    message: str = ""         # the exception's text, or the skip reason


def _matches(signatures, kind, summary):
    return any(s.get("kind") == kind and re.search(s.get("pattern", ""), summary) for s in signatures)


def _describe(signatures):
    return " or ".join(f"{s.get('kind')}: /{s.get('pattern')}/" for s in signatures) or "no signature"


@dataclass
class Expectation:
    """What the baseline says of a case: a known deviation of `rule`, that
    every run of the case shows."""
    rule: str
    version: str
    observed: str = ""
    evidence: str = ""
    signatures: list = field(default_factory=list)  # [{"kind": ..., "pattern": ...}]
    whose: str = "MHD"  # or "client NAME": a real client's known behaviour (harness/interop/known.py)
    workaround: str = ""  # what an application should do about it (a version baseline's entries)

    def matches(self, kind, summary):
        return _matches(self.signatures, kind, summary)

    def describe(self):
        return _describe(self.signatures)


@dataclass
class Race:
    """A known race of an MHD version (a baseline's `races` entry): where
    it strikes (cells: 'MODE-TRANSPORT' patterns; rules), how a failure it
    causes looks, and the range of its rate per attempt."""
    name: str
    version: str
    cells: list
    rules: list
    signatures: list
    low: float = 0.0
    high: float = 1.0
    observed: str = ""
    evidence: str = ""
    workaround: str = ""

    def matches(self, kind, summary):
        return _matches(self.signatures, kind, summary)

    def describe(self):
        return _describe(self.signatures)

    def applies(self, rules, cell):
        """Whether a case of `rules` in `cell` ('epoll-https') can meet it."""
        return (cell is not None and any(r in self.rules for r in rules)
                and any(fnmatch.fnmatchcase(cell, pat) for pat in self.cells))


@dataclass
class Attempts:
    """A case's attempts at a known race so far: how many failed as the
    race, and the first such failure (its summary and detail)."""
    failures: int = 0
    attempts: int = 0
    runs: int = 0
    first: str = ""
    first_detail: str = ""

    def plus(self, failures, attempts, summary="", detail=""):
        first = self.first or (summary if failures else "")
        first_detail = self.first_detail or (detail[:4000] if failures else "")
        return Attempts(self.failures + failures, self.attempts + attempts, self.runs + 1, first, first_detail)


@dataclass
class RaceRun:
    """What classify needs to judge a case that may meet `race`: the
    attempts before this run, this run's own counts when the case repeats
    an attempt itself ((failures, attempts), e.g. U-ACT-1's 50 CLOSEs),
    alpha, and whether another run may follow (the time budget)."""
    race: Race
    alpha: float
    before: Attempts = field(default_factory=Attempts)
    repeated: tuple = None
    more: bool = True
    repeatable: bool = True  # False: one observation that cannot be made again (a shared server's stop)


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
    first = re.sub(r"^[\w.]*(Error|Exception|Timeout|Died|Mismatch|Failure|Reset|Stall|Loss|Changed|Slow|Stop): ",
                   "", first, count=1)
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


def _verdict(outcome, verdict, kind=None, summary="", detail="", **extra):
    return dict(outcome=outcome, verdict=verdict, kind=kind, summary=summary, detail=detail, **extra)


def _findings(phases, bad):
    """What the case's failed phases found: the decisive one first, then
    what later phases saw on their own (a daemon that did not stop after a
    failed call, say; not what the decisive one already explains)."""
    rest = [p for p in phases if p.status == "failed" and p is not bad and p.message not in bad.message]
    return [bad] + rest


def _later(phases, bad):
    """The findings after the decisive one, for the detail."""
    return "".join(f"\nalso, at {p.when} ({p.kind}): {p.message}" for p in _findings(phases, bad)[1:])


def _unmatched(phases, bad, matches):
    """The findings that `matches(kind, summary)` does not accept."""
    return [p for p in _findings(phases, bad) if not matches(p.kind, summary_of(p.message))]


def classify(phases, expected=None, measure=None, race=None):
    """{outcome, verdict, kind, summary, detail[, race]} for a case whose
    phases so far are `phases` (setup first), given the baseline's
    `expected` (an Expectation, or None), for a measure case `measure`, and
    for a case that may meet a known race `race` (a RaceRun)."""
    skipped = next((p for p in phases if p.status == "skipped"), None)
    if skipped is not None and not any(p.status == "failed" for p in phases):
        # pytest.skip() in the setup or in the case itself: nothing was decided.
        return _verdict("skipped", "untested", detail=skipped.message)
    bad = _failed(phases)
    if bad is not None and (bad.kind not in KINDS or bad.when == "setup"):
        # The harness could not run the case (or its server would not
        # start): nothing was learnt about MHD.
        return _verdict("error", "untested", "harness", summary_of(bad.message), f"{bad.when}: {bad.message}")
    if race is not None and expected is None:
        judged = _race_verdict(phases, bad, race, measure)
        if judged is not None:
            return judged
    if bad is not None:
        summary = summary_of(bad.message)
        detail = bad.message + _later(phases, bad)
        # Every finding, the decisive one first (a baseline names each).
        found = [{"kind": p.kind, "summary": summary_of(p.message)} for p in _findings(phases, bad)]
        if expected is None:
            return _verdict("failed", "deviates", bad.kind, summary, detail, findings=found)
        others = _unmatched(phases, bad, expected.matches)
        if not others:
            return _verdict("expected-deviation", "deviates", bad.kind, summary,
                            f"baseline {expected.version}: {expected.rule} {expected.observed}\nobserved: {detail}",
                            findings=found)
        other = others[0]
        return _verdict("failed", "deviates", other.kind, summary_of(other.message),
                        f"The baseline ({expected.version}) expects {expected.rule} to deviate with "
                        f"{expected.describe()}; this run failed otherwise: {other.kind}: "
                        f"{summary_of(other.message)}\n{detail}", findings=found)
    call_done = any(p.when == "call" for p in phases)
    if not call_done:
        return _verdict("passed", "conforms")  # setup only, so far
    if expected is not None:
        return _verdict("failed", "conforms", summary="MHD kept the promise",
                        detail=f"The baseline ({expected.version}) lists this case as a known deviation of "
                               f"{expected.rule} ({expected.observed}), but MHD kept the promise: update the "
                               "baseline (./conformance --update-baseline).")
    return _kept(measure)


def _kept(measure, **extra):
    """The verdict of a case that kept its promise: a measure's value must
    be recorded when a baseline is in use."""
    if measure is not None:
        if not measure.recorded and measure.baseline_in_use:
            return _verdict("unrecorded", "measured", summary="no value recorded in the baseline",
                            detail="The baseline in use records no value for this measure: record one with "
                                   "./conformance --update-baseline, after reviewing it.", **extra)
        if not measure.recorded:
            return _verdict("passed", "measured", **extra)
    return _verdict("passed", "conforms", **extra)


# -- known races -----------------------------------------------------------------
RACE_DECISIONS = ("continue", "not-seen", "no-longer", "race", "always", "undecided")


def alpha_for(race_cases):
    """The false-alarm probability allowed per case when `race_cases`
    cases of a run may meet a known race (a union bound over them)."""
    return RUN_FALSE_ALARM / max(1, race_cases)


def needed(high, alpha):
    """How many attempts in a row must all fail before a case is 'always'
    rather than the race: the least n with high**n <= alpha. None when no
    case can make that many (more than MAX_ATTEMPTS: the recorded rates
    come too near 1, as for many connections closed at once): then no count
    of failures tells the race from a failure that happens every time."""
    if high >= 1:
        return None
    if high <= 0:
        return 1
    n = max(1, math.ceil(math.log(alpha) / math.log(high) - 1e-9))
    return n if n <= MAX_ATTEMPTS else None


def needed_unseen(low, alpha):
    """How many attempts without a failure say 'no longer': the least n
    with (1-low)**n <= alpha. None when the lowest recorded rate is 0."""
    if low <= 0:
        return None
    if low >= 1:
        return 1
    return max(1, math.ceil(math.log(alpha) / math.log(1 - low) - 1e-9))


def judge_race(failures, attempts, low, high, alpha, more=False):
    """One of RACE_DECISIONS for a case whose `attempts` attempts at a race
    of recorded rates [low, high] saw `failures` fail as the race.
    'continue' when every attempt failed, too few to tell, and `more` are
    allowed."""
    if failures == 0:
        n = needed_unseen(low, alpha)
        return "no-longer" if n is not None and attempts >= n else "not-seen"
    if failures < attempts:
        return "race"
    n = needed(high, alpha)
    if n is None:
        return "race"
    if attempts >= n:
        return "always"
    return "continue" if more else "undecided"


def race_attempts(phases, run):
    """The case's attempts at run.race including this run (an Attempts), or
    None when this run failed otherwise than the race."""
    bad = _failed(phases)
    if bad is not None and _unmatched(phases, bad, run.race.matches):
        return None
    if run.repeated is not None:
        failures, attempts = run.repeated
    else:
        failures, attempts = (1 if bad else 0), 1
    if bad is not None and failures == 0:
        failures = attempts = 1  # the case failed as the race without counting its own attempts
    return run.before.plus(failures, attempts, summary_of(bad.message) if bad else "", bad.message if bad else "")


def _race_verdict(phases, bad, run, measure=None):
    """The verdict of a case that may meet the known race run.race, or None
    when it failed otherwise (then it is judged as any other case: a new
    failure)."""
    race = run.race
    total = race_attempts(phases, run)
    if total is None:
        return None
    if bad is None and not any(p.when == "call" for p in phases):
        return _verdict("passed", "conforms")  # setup only, so far
    decision = judge_race(total.failures, total.attempts, race.low, race.high, run.alpha, run.more)
    if decision == "undecided" and not run.repeatable:
        decision = "race"  # what cannot be observed again is as the race says
    n = needed(race.high, run.alpha)
    facts = dict(name=race.name, decision=decision, failures=total.failures, attempts=total.attempts,
                 runs=total.runs, low=race.low, high=race.high, needed=n, alpha=run.alpha)
    struck = f"the known race {race.name} struck {total.failures} of {total.attempts} attempts"
    seen = (f"\nthe first: {total.first_detail or total.first}" if total.failures else "")
    kind = bad.kind if bad else _first_kind(run)
    if decision in ("not-seen", "no-longer"):
        kept = _kept(measure, race=facts)
        if decision == "no-longer" and kept["outcome"] == "passed":
            kept["summary"] = kept["detail"] = (
                f"not seen in {total.attempts} attempts, where the race at its lowest recorded rate "
                f"({race.low:.0%}) strikes with probability at least {1 - (1 - race.low) ** total.attempts:.4f}: "
                "perhaps fixed (the baseline can say so)")
        return kept
    if decision in ("race", "continue"):
        return _verdict("expected-deviation", "deviates", kind, f"{struck}: {total.first}",
                        f"baseline {race.version}: race {race.name}: {race.observed}\n{struck}{seen}", race=facts)
    if decision == "always":
        why = (f"{struck}, every one: the race at its highest recorded rate ({race.high:.0%}) does that "
               f"{n} times in a row with probability at most {race.high ** n:.1g}; this is a failure that "
               "happens every time")
        return _verdict("failed", "deviates", kind, f"{why}: {total.first}", f"{why}{seen}", race=facts)
    why = (f"undecided: {struck}, every one, but {n} are needed to tell it from a failure that happens every "
           "time; the case's time budget ended the attempts")
    return _verdict("error", "deviates", kind, f"{why}: {total.first}", f"{why}{seen}", race=facts)


def _first_kind(run):
    sig = run.race.signatures
    return sig[0].get("kind") if sig else None


def binomial_tail(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def rate_interval(k, n, confidence=0.99):
    """The Clopper-Pearson interval of a rate seen as k of n: the rates
    under which seeing k (or fewer, or more) has probability at least
    (1-confidence)/2 on each side."""
    if n == 0:
        return 0.0, 1.0
    tail = (1 - confidence) / 2

    def solve(pred):
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if pred(mid):
                hi = mid
            else:
                lo = mid
        return (lo + hi) / 2
    low = 0.0 if k == 0 else solve(lambda p: binomial_tail(k, n, p) >= tail)
    high = 1.0 if k == n else solve(lambda p: 1 - binomial_tail(k + 1, n, p) <= tail)
    return low, high


# -- cells, rules and the run ----------------------------------------------------
# Why a case fails the gate, in the order reports list them.
PROBLEMS = {
    "new": "new deviation",
    "otherwise": "deviates otherwise than the baseline says",
    "too-often": "known race struck every attempt: a failure that happens every time",
    "gone": "known deviation no longer seen (update the baseline)",
    "unrecorded": "measure with no value in the baseline",
    "error": "error: the harness could not decide the case",
}
PLURALS = {"new": "new deviations", "otherwise": "cases that deviate otherwise than the baseline says",
           "too-often": "known races that struck every attempt", "gone": "known deviations gone",
           "unrecorded": "unrecorded measures", "error": "errors"}
# A rule's (or a cell's) state, worst first: a symbol and words, so that no
# report relies on colour alone.
STATES = {
    "fails": ("\u2717", "fails the gate"),
    "error": ("\u26a0", "error: the harness could not decide (fails the gate)"),
    "known": ("!", "deviates, as the baseline expects"),
    "conforms": ("\u2713", "conforms"),
    "measured": ("\u2248", "measured, nothing recorded to compare"),
    "untested": ("\u2013", "untested (skipped, or not run)"),
}
HEADS = {"fails": "FAILS THE GATE", "error": "ERROR", "known": "known deviation", "conforms": "conforms",
         "measured": "measured (no baseline value)", "untested": "untested"}


def problem(case):
    """The PROBLEMS key of a case (a results.json record) that fails the
    gate, else None."""
    if case["outcome"] in ("error", "unrecorded"):
        return case["outcome"]
    if case["outcome"] != "failed":
        return None
    if (case.get("race") or {}).get("decision") == "always" or case.get("too_often"):
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
    return {"deviates": "known", "conforms": "conforms", "measured": "measured"}.get(
        rule_verdict([c["verdict"] for c in cases]), "untested")


def rule_verdict(verdicts):
    """One verdict from case verdicts: deviates if any case deviates;
    conforms if any conforms; measured if they only measured (nothing
    recorded to compare with); untested if none decided."""
    for verdict in ("deviates", "conforms", "measured"):
        if verdict in verdicts:
            return verdict
    return "untested"


def cell_of(case):
    """A case's cell: 'MODE-TRANSPORT' ('epoll-https'), None for a case
    about the API or the daemon alone."""
    mode, transport = case.get("mode"), case.get("transport")
    if not mode:
        return None
    return f"{mode.lower().removeprefix('m-')}-{transport or '-'}"


def cells(cases, rules=None):
    """{(rule, cell): [cases]} over the cases' rules (only `rules` if given)."""
    out = {}
    for case in cases:
        for rule in case["rules"]:
            if rules is None or rule in rules:
                out.setdefault((rule, cell_of(case) or "api"), []).append(case)
    return out


def decided_verdict(case):
    """What MHD did in a case, for comparing runs: a measure whose value
    differs from the one recorded still measured (the values are compared)."""
    if case.get("kind") == "measure" and case.get("failure_kind") == "measure":
        return "measured"
    return case["verdict"]


def cell_verdict(cases):
    """What MHD did in a cell, for comparing runs: deviates (a case
    deviated), conforms, measured, error (a case errored and none decided
    otherwise) or untested."""
    verdict = rule_verdict([decided_verdict(c) for c in cases])
    if verdict == "untested" and any(c.get("outcome") == "error" for c in cases):
        return "error"
    return verdict


def cell_verdicts(cases, rules=None):
    """{"RULE cell": cell_verdict} of a run's cases (bisect)."""
    return {f"{rule} {cell}": cell_verdict(mine) for (rule, cell), mine in sorted(cells(cases, rules).items())}


def measured_values(cases):
    """{case name: observed} of the measure cases that observed a value."""
    return {case_name(c): c["observed"] for c in cases
            if c.get("kind") == "measure" and c.get("observed") is not None and c["verdict"] != "untested"}


def problems_first(cases):
    """Cases in report order: those that fail the gate first (by PROBLEMS),
    then known deviations, then the rest."""
    order = list(PROBLEMS)
    return sorted(cases, key=lambda c: (order.index(problem(c)) if problem(c) else
                                        len(order) + (0 if c["verdict"] == "deviates" else 1)))


def case_name(case):
    return case["id"].split("::")[-1]


def reason(case):
    """A case's one-line reason: the problem, and the failure's summary."""
    text = case.get("summary") or case.get("outcome")
    kind = problem(case)
    return f"{PROBLEMS[kind]}: {text}" if kind else text


def selected(rules, cases):
    """The rule IDs (of a results.json `rules`) the run had cases for."""
    ran = {r for c in cases for r in c["rules"]}
    return [rule_id for rule_id in rules if rule_id in ran]


def race_summary(cases):
    """{race name: {failures, attempts, cases, decisions: {decision: n},
    low, high}} over the cases that could meet a race."""
    out = {}
    for case in cases:
        facts = case.get("race")
        if not facts:
            continue
        entry = out.setdefault(facts["name"], {"failures": 0, "attempts": 0, "cases": 0, "decisions": {},
                                               "low": facts["low"], "high": facts["high"]})
        entry["failures"] += facts["failures"]
        entry["attempts"] += facts["attempts"]
        entry["cases"] += 1
        entry["decisions"][facts["decision"]] = entry["decisions"].get(facts["decision"], 0) + 1
    return out


def gate(cases, interrupted=False, baseline=None):
    """The run's verdict, the first line of every report:
    {passed, headline, problems: {PROBLEMS key: [rule IDs]}}."""
    found = {}
    for case in cases:
        kind = problem(case)
        if kind:
            rule = case["rules"][0] if case["rules"] else "?"
            found.setdefault(kind, {}).setdefault(rule, 0)
            found[kind][rule] += 1
    parts = []
    for kind in PROBLEMS:
        if kind in found:
            n = sum(found[kind].values())
            rules = sorted(found[kind])
            parts.append(f"{n} {PLURALS[kind] if n != 1 else PROBLEMS[kind]} ("
                         + ", ".join(rules[:6]) + (f" and {len(rules) - 6} more rules" if len(rules) > 6 else "")
                         + ")")
    known = [c for c in cases if c["outcome"] == "expected-deviation"]
    untested = sum(c["outcome"] == "skipped" for c in cases)
    if parts:
        headline = "FAILED: " + "; ".join(parts)
    elif not cases:
        headline = "FAILED: no case ran"
    else:
        name = baseline.rsplit("/", 1)[-1] if baseline else None
        headline = (f"PASSED: all {len(cases) - untested} cases that ran behaved as the baseline"
                    + (f" ({name})" if name else " (none: every deviation is new)")
                    + " says" + (f"; {len(known)} known deviations in "
                                 f"{len({r for c in known for r in c['rules'][:1]})} rules" if known else "")
                    + (f"; {untested} skipped (untested)" if untested else ""))
    if interrupted:
        headline = "INTERRUPTED, the run is incomplete. " + headline
    return {"passed": not parts and bool(cases) and not interrupted, "headline": headline,
            "problems": {k: sorted(v) for k, v in found.items()}}


def killed(cases):
    """The cases of a run (against a mutant) that did not behave as the
    baseline says: those that kill the mutant."""
    return [c for c in cases if c["outcome"] in FAILING]
