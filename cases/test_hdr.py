"""HDR: the Upgrade header (rule catalogue, HDR)."""

import pytest

from harness.checks import ECHO_ONCE, api_story, echo_and_finish, expect_101
from harness.server import EventTimeout


@pytest.mark.rule("U-HDR-1")
def test_upgrade_without_upgrade_header_never_101(server, connect, barrier, observe):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", proto="-"))
    head = conn.read_head()
    if head.status == 101:
        # The handler runs after the 101 went out: it is on its way.
        try:
            conn.wait_event("upgraded", seconds=2)
        except EventTimeout:
            pass
    else:
        barrier(conn.server)
    # Versions differ here (0.9.75 refuses and logs why; 1.0.x sends the 101
    # and runs the handler): recorded, whatever the verdict.
    observe({"status": head.status, "queue_result": next((e["result"] for e in conn.events("queue")), None),
             "handler_ran": bool(conn.events("upgraded")), "mhd_log": [e["msg"] for e in conn.events("mhd_log")]})
    assert head.status != 101, (
        f"MHD sent {head.status_line()!r} with no Upgrade header (a 101 must name the protocol): "
        f"{head.raw!r} [{api_story(conn)}]")


REQUEST_UPGRADE = {"websocket": "websocket", "none": None}


@pytest.mark.rule("U-HDR-2")
@pytest.mark.parametrize("request_upgrade", list(REQUEST_UPGRADE), ids=lambda r: f"request-{r}")
def test_upgrade_value_sent_verbatim(server, connect, request_upgrade):
    value = "Weird_Proto/1.0, other  ;x=1"
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, proto=value), upgrade=REQUEST_UPGRADE[request_upgrade])
    head = expect_101(conn)
    assert head.get_all("upgrade") == [value], (
        f"the application's Upgrade value {value!r} went out as {head.get_all('upgrade')!r}")
    echo_and_finish(conn)


# Longer than any protocol name a client offers, and than a byte-sized
# length field: a value MHD copies into its own buffer must still go out
# whole (a comma list, as RFC 9110 allows, of many protocols).
LONG_VALUE = ", ".join(f"proto-{i:03d}/1.0" for i in range(40))


@pytest.mark.rule("U-HDR-2")
def test_long_upgrade_value_sent_verbatim(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, proto=LONG_VALUE))
    head = expect_101(conn)
    sent = head.get_all("upgrade")
    assert sent == [LONG_VALUE], (
        f"the application's {len(LONG_VALUE)}-byte Upgrade value went out as "
        f"{[len(v) for v in sent]} byte(s): {sent!r}")
    echo_and_finish(conn)
