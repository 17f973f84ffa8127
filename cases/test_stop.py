"""STOP: stopping the daemon (rule catalogue, STOP)."""

import pytest

from harness import faults
from harness.checks import expect_101, expect_echo, upgrade_echo_close
from harness.server import describe_exit

# U-STOP-2 while the application sends: it writes QUEUED_BYTES that the
# client never reads, into a socket pair it gives QUEUED_BYTES * 4 of
# buffer, while the TCP socket and the client's receive buffer are a few
# KiB (small-buffers) and MHD's own buffers are within its 32 KiB memory
# pool. So once the application has written them all, over HTTPS some
# still wait in the socket pair, whatever the machine, when the daemon
# stops.
QUEUED_BYTES = 128 * 1024
STOPPING_SECONDS = 5  # scaled: the server's signal handling takes milliseconds


@pytest.mark.rule("U-STOP-1")
def test_stop_after_every_close(private_server, connect):
    srv = private_server(detect_leaks=True)  # with --sanitize: "no leak" is checked at exit
    upgrade_echo_close(connect, srv)
    code = srv.stop()
    assert not srv.killed, f"MHD_stop_daemon did not return within {srv.STOP_SECONDS} s (killed)"
    assert code == 0, f"the server {describe_exit(code)} on stop\n" + srv.last_lines()
    assert any(e["ev"] == "stopped" for e in srv.events()), "no 'stopped' event: MHD_stop_daemon never returned"


@pytest.mark.rule("U-STOP-2")
def test_stop_with_upgraded_connection_open(private_server, connect, measure):
    srv = private_server(stop_with_open=True)
    conn = connect(srv)
    conn.request(srv.url("/upgrade", then="echo"))
    expect_101(conn)
    expect_echo(conn)
    code = srv.stop()
    data, end = conn.read_to_end(seconds=1)
    measure({"client_saw": end, "server": describe_exit(code), "killed_after_deadline": srv.killed,
             "daemon_stopped_event": any(e["ev"] == "daemon_stopped" for e in srv.events())})


@pytest.mark.rule("U-STOP-2")
# Not in the thread-per-connection modes yet: there, in one run of about
# thirty under a CPU hog, MHD 1.0.10's MHD_stop_daemon() did not return
# (HTTPS); until that race's rate is measured, a baseline cannot judge it.
@pytest.mark.modes("M-SELECT", "M-POLL", "M-EPOLL", "M-POOL", "M-EXT-SELECT", "M-EXT-EPOLL", "M-POOL-SELECT",
                   "M-POOL-POLL")
def test_stop_while_application_sends(private_server, connect, measure):
    srv = private_server(stop_with_open=True, faults="small-buffers")
    conn = connect(srv, sockbuf=faults.SOCKBUF)
    with faults.named(srv):
        conn.request(srv.url("/upgrade", then="send-wait", n=QUEUED_BYTES, sockbuf=QUEUED_BYTES * 4))
        expect_101(conn)
        conn.wait_event("sent")
        # The client reads once the stop has begun (a TLS close then waits
        # for no one; a client that never reads is another question), when
        # MHD is about to see its shutdown with the bytes still queued.
        srv.begin_stop()
        srv.wait_event(lambda e: e["ev"] == "stopping", STOPPING_SECONDS, "'stopping' event")
        data, end = conn.read_to_end(seconds=1)
        code = srv.stop()
        # How it ends over HTTPS is MHD's race (a TLS close_notify, or none
        # when its last record did not fit): only whether it ends counts.
        measure({"client_saw_the_end": end != "open", "server": describe_exit(code),
                 "killed_after_deadline": srv.killed,
                 "daemon_stopped_event": any(e["ev"] == "daemon_stopped" for e in srv.events())})
