"""ACT: MHD_upgrade_action (rule catalogue, ACT)."""

import pytest

from harness.checks import ECHO_CHECK, api_story, attempts, expect_101, expect_echo, finish
from harness.client import first_difference, pattern
from harness.modes import EXTERNAL

CLOSE_REPEATS = 50  # an intermittent stall must show: a rate, not a fluke
CLOSE_SECONDS = 2  # scaled: how soon after CLOSE the client must see the end
CLOSE_GIVE_UP = 10  # failures after which the rate is clear enough (each costs CLOSE_SECONDS)


def expect_fin_after(conn, data_expected, seconds=None):
    """The data first, then the end: a loss must show even where the
    baseline knows the end to be wrong."""
    data, end = conn.read_to_end(**({"seconds": seconds} if seconds else {}))
    at = first_difference(data, data_expected)
    # A loss (only a head of the data arrived) and a change (other bytes)
    # are told apart: a baseline that knows the one must not accept the other.
    assert not (at == len(data) < len(data_expected)), (
        f"received only {len(data)} of the {len(data_expected)} bytes before the connection ended ({end}); "
        "the rest never arrived")
    assert at is None, (f"received {len(data)} bytes before the connection ended ({end}), expected "
                        f"{len(data_expected)}; they differ from offset {at} on")
    assert end == conn.clean_end, (
        f"after MHD_UPGRADE_ACTION_CLOSE the client saw {end!r} (expected an orderly {conn.clean_end}) "
        f"[{api_story(conn)}]")


@pytest.mark.rule("U-ACT-1")
def test_close_ends_connection(server, connect, observe):
    def attempt(i):
        conn = connect(server)
        try:
            conn.request("/upgrade?then=close")
            expect_101(conn)
            data, end = conn.read_to_end(seconds=CLOSE_SECONDS)
            assert conn.wait_event("action", action="close")["result"], "MHD_upgrade_action(CLOSE) returned MHD_NO"
            assert (data, end) == (b"", conn.clean_end), f"the client saw {end} after {data[:50]!r}"
        finally:
            conn.close()

    done, failures = attempts(CLOSE_REPEATS, attempt, stop_after=CLOSE_GIVE_UP)
    observe({"attempts": done, "failures": len(failures)})
    assert not failures, (f"{len(failures)} of {done} CLOSE actions did not end the connection in order "
                          f"within {CLOSE_SECONDS} s:\n" + "\n".join(failures[:10]))


@pytest.mark.rule("U-ACT-2")
@pytest.mark.parametrize("size", [100, 1 << 20], ids=lambda n: f"{n}B")
def test_data_sent_before_close_arrives(server, connect, size):
    conn = connect(server)
    conn.request(f"/upgrade?then=send-close&n={size}")
    expect_101(conn)
    expect_fin_after(conn, pattern(size))


@pytest.mark.rule("U-ACT-3")
def test_cork_actions_change_the_socket(server, connect):
    conn = connect(server)
    conn.request(f"/upgrade?then=cork&n=100&until={len(ECHO_CHECK)}")
    expect_101(conn)
    # Corked data must arrive once CORK_OFF flushed it.
    assert conn.read_exact(100) == pattern(100), "the corked bytes arrived changed"
    cork = conn.wait_event("cork")
    assert cork["on_result"] and cork["off_result"], (
        f"CORK_ON returned {'YES' if cork['on_result'] else 'NO'}, CORK_OFF "
        f"{'YES' if cork['off_result'] else 'NO'}; both should be MHD_YES")
    handed = "" if cork["sock_is_tcp_socket"] else (
        f"; on the socket handed to the application (not the TCP socket under HTTPS): "
        f"{cork['sock_cork_after_on']}, then {cork['sock_cork_after_off']}")
    assert (cork["tcp_cork_after_on"], cork["tcp_cork_after_off"]) == (1, 0), (
        f"TCP_CORK on the client's TCP socket was {cork['tcp_cork_after_on']} after CORK_ON and "
        f"{cork['tcp_cork_after_off']} after CORK_OFF (expected 1, then 0){handed}")
    expect_echo(conn)
    finish(conn)


@pytest.mark.rule("U-ACT-4")
def test_bad_actions_refused(server, connect):
    conn = connect(server)
    conn.request(f"/upgrade?then=bad-action&until={len(ECHO_CHECK)}")
    expect_101(conn)
    bad = conn.wait_event("bad_action")
    assert not bad["unknown_action_result"], "MHD_upgrade_action(urh, <unknown action>) returned MHD_YES"
    assert not bad["null_handle_result"], "MHD_upgrade_action(NULL, CLOSE) returned MHD_YES"
    expect_echo(conn)
    finish(conn)


@pytest.mark.rule("U-ACT-5")
def test_close_inside_handler(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=close-in-handler&n=100")
    expect_101(conn)
    expect_fin_after(conn, pattern(100))
    assert conn.wait_event("action", action="close")["result"], "CLOSE inside the handler returned MHD_NO"


ACT6_REPEATS = 20


@pytest.mark.rule("U-ACT-6")
@pytest.mark.modes(*EXTERNAL)
def test_close_from_application_thread_ends_connection(server, connect, observe):
    """The application's script thread calls CLOSE once it echoed one byte,
    while the external loop waits on what MHD named and nothing else (no
    wake-up of its own): MHD must end the connection all the same."""
    def attempt(i):
        conn = connect(server)
        try:
            conn.request("/upgrade?then=echo&until=1")
            expect_101(conn)
            assert conn.exchange(b"x", 1) == b"x", "the byte was not echoed"
            data, end = conn.read_to_end(seconds=CLOSE_SECONDS)
            assert conn.wait_event("action", action="close")["result"], "MHD_upgrade_action(CLOSE) returned MHD_NO"
            assert (data, end) == (b"", conn.clean_end), (
                f"CLOSE from the application's thread: the client saw {end} after {data[:50]!r}")
        finally:
            conn.close()

    done, failures = attempts(ACT6_REPEATS, attempt, stop_after=3)
    observe({"attempts": done, "failures": len(failures)})
    assert not failures, (f"{len(failures)} of {done} CLOSE actions from the application's thread did not end the "
                          f"connection in order within {CLOSE_SECONDS} s:\n" + "\n".join(failures))
