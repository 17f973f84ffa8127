"""SUSP: suspend/resume and upgrades (rule catalogue, SUSP)."""

import pytest

from harness.checks import ECHO_ONCE, attempts, echo_and_finish, expect_101, expect_echo, finish, server_survives
from harness.client import WireError
from harness.server import describe_exit

REPEATS = 50
ATTEMPT_SECONDS = 2  # scaled; a 101 on loopback takes milliseconds


@pytest.mark.rule("U-SUSP-1")
def test_upgrade_queued_while_suspended(private_server, connect, observe):
    server = private_server()  # a failed attempt may leave MHD stuck: keep it from other cases

    def attempt(i):
        conn = connect(server)
        try:
            conn.request(server.url("/upgrade", **ECHO_ONCE, suspend=True))
            expect_101(conn, seconds=ATTEMPT_SECONDS)
            echo_and_finish(conn)
        except OSError as e:  # reset: a failed attempt like any other (a wire finding)
            raise WireError(f"{type(e).__name__}: {e}") from None
        finally:
            conn.close()

    with server_survives(server, "while upgrades were queued on suspended connections"):
        tries = attempts(REPEATS, attempt, stop_after=3)
    observe({"attempts": tries.done, "failures": len(tries.failed)})
    tries.check("suspended upgrades failed")


@pytest.mark.rule("U-SUSP-2")
def test_suspending_upgraded_connection_refused(server, connect):
    """MHD_suspend_connection returns nothing: the refusal shows in MHD's
    log, written while the handler that called it ran (the server tags
    those lines with the request's id). Then the connection still carries
    data, and is cleaned up after CLOSE (the leak check)."""
    conn = connect(server)
    conn.request(server.url("/upgrade", then="suspend-upgraded", until=len(b"after-suspend")))
    expect_101(conn)
    conn.wait_event("suspend_called")
    logged = [e["msg"] for e in conn.events("mhd_log")]
    assert any("cannot be suspended" in m for m in logged), (
        f"MHD_suspend_connection on the upgraded connection was not refused: MHD logged {logged or 'nothing'} "
        "while the handler called it")
    expect_echo(conn, b"after-suspend")
    finish(conn)
    conn.wait_event("conn_closed")


@pytest.mark.rule("U-SUSP-2")
def test_suspending_after_handler_refused(private_server, connect, control):
    """The same from the application's thread, after the handler returned
    (the client releases it once it saw the handler_returned event). An MHD
    that took the suspension would have a suspended connection that is
    also upgraded in its lists: the stop at the end must still return."""
    srv = private_server()  # stopped here: MHD_stop_daemon is part of the promise
    conn = connect(srv)
    conn.request(srv.url("/upgrade", then="suspend-after-handler", until=len(b"after-suspend")))
    expect_101(conn)
    conn.wait_event("handler_returned")
    assert control(srv, srv.url("/release", of=conn.rid)) == 200, "the application's script was gone"
    assert conn.wait_event("suspend_called")["released"], "the application's thread was never released"
    logged = [e["msg"] for e in conn.events("mhd_log")]
    assert any("cannot be suspended" in m for m in logged), (
        "MHD_suspend_connection on the upgraded connection, from the application's thread after the "
        f"handler returned, was not refused: MHD logged {logged or 'nothing'} for this request")
    expect_echo(conn, b"after-suspend")
    finish(conn)
    conn.wait_event("conn_closed")
    code = srv.stop()
    assert not srv.killed, f"MHD_stop_daemon did not return within {srv.STOP_SECONDS} s (killed)"
    assert code == 0, f"the server {describe_exit(code)} on stop\n" + srv.last_lines()
