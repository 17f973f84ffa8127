"""harness/faults.py: the schedules' environment, their seeds, and how a
finding made under faults names them."""

import pytest

from harness import faults
from harness.server import EventTimeout
from harness.streams import Stall


class Srv:
    def __init__(self, spec, events=()):
        self.env = {"CONFORMANCE_FAULTS": spec}
        self._events = list(events)

    def events(self):
        return self._events

    def wait_event(self, predicate, seconds, what):
        """As the server's, with every event already read."""
        for event in self._events:
            if predicate(event):
                return event
        raise EventTimeout(f"no {what}")


def test_every_schedule_says_what_must_strike():
    assert all(strikes for _, strikes in faults.SCHEDULES.values())


def test_environment_carries_the_seed():
    assert faults.environment("eintr", 7) == f"eintr={faults.EVERY},seed=7"
    with pytest.raises(ValueError, match="unknown fault schedule 'nope'"):
        faults.environment("nope", 1)


def test_seed_is_fixed_per_case_unless_chosen():
    a = faults.seed_for("cases/test_fault.py::x[epoll-https]")
    assert a == faults.seed_for("cases/test_fault.py::x[epoll-https]")
    assert a != faults.seed_for("cases/test_fault.py::x[poll-https]")
    assert faults.seed_for("anything", chosen=0) == 0


def test_a_finding_names_the_faults_last_and_keeps_its_kind():
    srv = Srv("sockbuf=2048,seed=42")
    with pytest.raises(Stall) as e:
        with faults.named(srv):
            raise Stall("exchange: no byte moved either way for 5.0 s")
    first, last = str(e.value).splitlines()[0], str(e.value).splitlines()[-1]
    assert first == "exchange: no byte moved either way for 5.0 s"
    assert last == "under injected faults sockbuf=2048,seed=42 (replay: add -- --fault-seed 42)"


def test_a_fault_that_never_struck_fails_the_case():
    srv = Srv("fail=calloc,seed=1", [{"ev": "fault", "what": "sockbuf"}])
    with pytest.raises(AssertionError, match="the injected fault calloc never struck"):
        faults.check_struck(srv, "no-memory")
    faults.check_struck(Srv("fail=calloc,seed=1", [{"ev": "fault", "what": "calloc"}]), "no-memory")
