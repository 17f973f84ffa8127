"""SUSP: suspend/resume and upgrades (rule catalogue, SUSP)."""

import pytest

from harness.checks import expect_101, expect_clean_end, expect_echo

REPEATS = 50
ATTEMPT_SECONDS = 2  # scaled; a 101 on loopback takes milliseconds


@pytest.mark.rule("U-SUSP-1")
def test_upgrade_queued_while_suspended(private_server, connect, observe):
    server = private_server()  # a failed attempt may leave MHD stuck: keep it from other cases
    failures = []
    for attempt in range(REPEATS):
        conn = connect(server)
        try:
            conn.request("/upgrade?then=echo&suspend=1")
            expect_101(conn, seconds=ATTEMPT_SECONDS)
            expect_echo(conn)
            expect_clean_end(conn)
        except AssertionError as e:
            failures.append(f"attempt {attempt}: {str(e).splitlines()[0]}")
        conn.close()
        if len(failures) == 3:
            break  # enough to judge; each failure costs a deadline
    observe({"attempts": attempt + 1, "failures": len(failures)})
    assert not failures, f"{len(failures)} of {attempt + 1} suspended upgrades failed:\n" + "\n".join(failures)


@pytest.mark.rule("U-SUSP-2")
def test_suspending_upgraded_connection_refused(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=suspend-upgraded")
    expect_101(conn)
    conn.wait_event("suspend_called")
    expect_echo(conn, b"after-suspend")
    expect_clean_end(conn)
