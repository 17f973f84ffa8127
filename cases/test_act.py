"""ACT: MHD_upgrade_action (rule catalogue, ACT)."""

import pytest

from harness.checks import ECHO_CHECK, attempts, echo_and_finish, expect_101, expect_orderly_end
from harness.client import pattern
from harness.modes import EXTERNAL

CLOSE_REPEATS = 50  # an intermittent stall must show: a rate, not a fluke
CLOSE_SECONDS = 2  # scaled: the quiet period after CLOSE (nothing more to come) that is a stall
CLOSE_GIVE_UP = 10  # failures after which the rate is clear enough (each costs CLOSE_SECONDS)


def expect_end_after_close(conn, what="after MHD_UPGRADE_ACTION_CLOSE"):
    """Nothing more, then an orderly end, after a CLOSE with no data: a
    stall is a quiet period of CLOSE_SECONDS (scaled)."""
    expect_orderly_end(conn, after=what, seconds=CLOSE_SECONDS, story=False)
    assert conn.wait_event("action", action="close")["result"], "MHD_upgrade_action(CLOSE) returned MHD_NO"


@pytest.mark.rule("U-ACT-1")
def test_close_ends_connection(server, connect, observe):
    def attempt(i):
        conn = connect(server)
        try:
            conn.request(server.url("/upgrade", then="close"))
            expect_101(conn)
            expect_end_after_close(conn)
        finally:
            conn.close()

    tries = attempts(CLOSE_REPEATS, attempt, stop_after=CLOSE_GIVE_UP)
    observe({"attempts": tries.done, "failures": len(tries.failed)})
    tries.check("CLOSE actions did not end the connection in order")


@pytest.mark.rule("U-ACT-2")
@pytest.mark.parametrize("size", [100, 1 << 20], ids=lambda n: f"{n}B")
def test_data_sent_before_close_arrives(server, connect, size):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="send-close", n=size))
    expect_101(conn)
    expect_orderly_end(conn, pattern(size))


@pytest.mark.rule("U-ACT-3")
def test_cork_actions_change_the_socket(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="cork", n=100, until=len(ECHO_CHECK)))
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
    echo_and_finish(conn)


@pytest.mark.rule("U-ACT-4")
def test_bad_actions_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="bad-action", until=len(ECHO_CHECK)))
    expect_101(conn)
    bad = conn.wait_event("bad_action")
    assert not bad["unknown_action_result"], "MHD_upgrade_action(urh, <unknown action>) returned MHD_YES"
    assert not bad["null_handle_result"], "MHD_upgrade_action(NULL, CLOSE) returned MHD_YES"
    echo_and_finish(conn)


@pytest.mark.rule("U-ACT-5")
def test_close_inside_handler(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close-in-handler", n=100))
    expect_101(conn)
    expect_orderly_end(conn, pattern(100))
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
            conn.request(server.url("/upgrade", then="echo", until=1))
            expect_101(conn)
            assert conn.exchange(b"x", 1) == b"x", "the byte was not echoed"
            expect_end_after_close(conn, "after CLOSE from the application's thread")
        finally:
            conn.close()

    tries = attempts(ACT6_REPEATS, attempt, stop_after=3)
    observe({"attempts": tries.done, "failures": len(tries.failed)})
    tries.check("CLOSE actions from the application's thread did not end the connection in order")
