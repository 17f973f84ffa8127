"""HDR: the Upgrade header (rule catalogue, HDR)."""

from urllib.parse import quote

import pytest

from harness.checks import ECHO_ONCE, api_story, expect_101, expect_echo, finish


@pytest.mark.rule("U-HDR-1")
def test_upgrade_without_upgrade_header_never_101(server, connect):
    conn = connect(server)
    conn.request("/upgrade?then=close&proto=-")
    head = conn.read_head()
    assert head.status != 101, (
        f"MHD sent {head.status_line()!r} with no Upgrade header (a 101 must name the protocol): "
        f"{head.raw!r} [{api_story(conn)}]")


REQUEST_UPGRADE = {"websocket": "websocket", "none": None}


@pytest.mark.rule("U-HDR-2")
@pytest.mark.parametrize("request_upgrade", list(REQUEST_UPGRADE), ids=lambda r: f"request-{r}")
def test_upgrade_value_sent_verbatim(server, connect, request_upgrade):
    value = "Weird_Proto/1.0, other  ;x=1"
    conn = connect(server)
    conn.request(f"/upgrade?{ECHO_ONCE}&proto={quote(value)}", upgrade=REQUEST_UPGRADE[request_upgrade])
    head = expect_101(conn)
    assert head.get_all("upgrade") == [value], (
        f"the application's Upgrade value {value!r} went out as {head.get_all('upgrade')!r}")
    expect_echo(conn)
    finish(conn)
