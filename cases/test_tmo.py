"""TMO: connection timeouts before and after the upgrade (rule catalogue, TMO)."""

import pytest

from harness.checks import expect_101, expect_echo, finish
from harness.deadlines import scaled

TIMEOUT = 1  # MHD_OPTION_CONNECTION_TIMEOUT of these servers, seconds


@pytest.mark.rule("U-TMO-1")
def test_no_timeout_after_upgrade(make_server, connect):
    conn = connect(make_server(timeout=TIMEOUT))
    conn.request(f"/upgrade?then=echo&until={len(b'still-here')}")
    expect_101(conn)
    # Idle for 2.5 times the timeout: the connection must neither end nor
    # deliver anything meanwhile (waiting on that, with a deadline).
    data, end = conn.read_to_end(seconds=2.5 * TIMEOUT, scale=False)  # the idle period is the test
    assert (data, end) == (b"", "open"), (
        f"the upgraded connection, idle, ended ({end}) within {2.5 * TIMEOUT} s with a "
        f"{TIMEOUT} s connection timeout")
    expect_echo(conn, b"still-here")
    finish(conn)


@pytest.mark.rule("U-TMO-2")
def test_timeout_before_upgrade(make_server, connect):
    conn = connect(make_server(timeout=TIMEOUT))
    conn.send(b"GET /upgrade?then=echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
    limit = 2 * TIMEOUT + scaled(2)  # MHD's timeout (not scaled) plus a scaled margin
    data, end = conn.read_to_end(seconds=limit, scale=False)
    assert end != "open", (
        f"a request stalled half-way was still open after {limit:.1f} s with a {TIMEOUT} s timeout")
    assert not conn.events("upgraded")
