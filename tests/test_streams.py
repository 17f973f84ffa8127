"""A stream judged by progress (harness/streams.py): the four findings,
each worded as what was seen, and the quiet period that starts again with
every byte; repeated attempts reported as one finding (harness/checks.py)."""

import time

import pytest

from harness.checks import attempts
from harness.streams import Changed, Loss, Progress, Slow, Stall, check_bytes, waited

WANT = bytes(range(200)) * 10  # 2000 bytes


@pytest.mark.parametrize("got, ending, cls, text", [
    (WANT[:700], "fin", Loss, "the stream ended (fin) after 700 of 2000 bytes"),
    (WANT[:700], "open", Stall, "no byte for 5.0 s after 700 of 2000 bytes; the connection is still open"),
    (WANT[:700] + b"x" + WANT[701:], "fin", Changed, "the bytes differ from offset 700 on: 2000 received, 2000 sent"),
    (WANT + b"more", "fin", Changed, "the bytes differ from offset 2000 on (more bytes than were sent)"),
    (WANT[:700] + b"x", "fin", Changed, "the bytes differ from offset 700 on"),  # a change beats a loss
])
def test_each_finding_says_what_was_seen(got, ending, cls, text):
    with pytest.raises(cls) as e:
        check_bytes(got, WANT, ending, "the echo", quiet_seconds=5.0, context="mem-1k")
    assert str(e.value).startswith(f"the echo: {text}")
    assert str(e.value).endswith("(mem-1k)")


def test_the_whole_stream_is_no_finding():
    check_bytes(WANT, WANT, "fin")


def test_a_byte_starts_the_quiet_period_again():
    progress = Progress(quiet=0.2, cap=60, scale=False)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # half a second of bytes every 50 ms: never quiet for 0.2 s
        assert not progress.expired()
        progress.moved()
        time.sleep(0.05)  # the stimulus: bytes that keep coming
    assert not progress.expired()
    while not progress.expired():
        time.sleep(0.01)
    assert progress.stalled()
    assert str(waited(progress, 10, 20)).startswith("no byte for 0.2 s after 10 of 20 bytes")


def test_a_stream_still_moving_at_the_cap_is_slow_not_lost():
    progress = Progress(quiet=60, cap=0.05, scale=False)
    while not progress.expired():
        progress.moved()
        time.sleep(0.01)
    finding = waited(progress, 1000, 2000)
    assert isinstance(finding, Slow) and not progress.stalled()
    assert "still moving after 0 s, the cap: 1000 of 2000 bytes in 0 s" in str(finding)


def test_repeated_attempts_are_one_finding_of_their_shared_kind():
    def stall(i):
        raise Stall(f"no byte for 2.0 s (attempt {i})")
    tries = attempts(5, stall, stop_after=3)
    assert (tries.done, len(tries.failed)) == (3, 3)
    with pytest.raises(Stall, match=r"^3 of 3 CLOSE actions did not end: no byte for 2.0 s \(attempt 0\)"):
        tries.check("CLOSE actions did not end")

    def mixed(i):
        if i % 2:
            raise Stall("no byte")
        raise AssertionError("CLOSE returned MHD_NO")
    tries = attempts(4, mixed)
    with pytest.raises(AssertionError, match=r"^4 of 4 CLOSEs \(in different ways\): CLOSE returned MHD_NO") as e:
        tries.check("CLOSEs")
    assert type(e.value) is AssertionError
    attempts(3, lambda i: None).check("nothing fails")
