"""FLAG: which daemon flags enable upgrading (rule catalogue, FLAG)."""

import pytest

from harness.checks import ECHO_ONCE, echo_and_finish, expect_101, expect_refused


def upgrade_and_echo(conn):
    conn.request(conn.server.url("/upgrade", **ECHO_ONCE))
    expect_101(conn)
    conn.wait_event("upgraded")
    echo_and_finish(conn)


@pytest.mark.rule("U-FLAG-1")
def test_suspend_resume_flag_alone_upgrades(make_server, connect):
    """The manual: upgrading works 'only if MHD_ALLOW_SUSPEND_RESUME' is set."""
    upgrade_and_echo(connect(make_server(flags="suspend")))


@pytest.mark.rule("U-FLAG-2")
def test_allow_upgrade_flag_upgrades(server, connect):
    upgrade_and_echo(connect(server))


@pytest.mark.rule("U-FLAG-3")
def test_no_flag_refuses_upgrade(make_server, connect):
    conn = connect(make_server(flags="none"))
    conn.request(conn.server.url("/upgrade", then="close"))
    expect_refused(conn)
    assert not conn.events("upgraded"), "the upgrade handler ran on a daemon without upgrade support"


@pytest.mark.rule("U-FLAG-4")
def test_daemon_info_flags(make_server, measure):
    """What MHD_DAEMON_INFO_FLAGS reports for each combination of the two flags."""
    seen = {}
    for flags in ("upgrade", "suspend", "both", "none"):
        ready = make_server(flags=flags).ready
        assert ready["info_flags_known"], "MHD_get_daemon_info(MHD_DAEMON_INFO_FLAGS) returned NULL"
        seen[flags] = {"allow_upgrade": ready["info_allow_upgrade"],
                       "allow_suspend_resume": ready["info_allow_suspend_resume"]}
    measure(seen)
