"""SOCK: the socket handed to the application (rule catalogue, SOCK)."""

import errno

import pytest

from harness import pressure
from harness.checks import ECHO_CHECK, echo_and_finish, echo_counted, expect_101, finish
from harness.client import counted
from harness.streams import check_bytes
from harness.transfer import MEMORY_LIMITS, SOCKBUF, wrapping

SMALL = {name: MEMORY_LIMITS[name] for name in ("mem-1k", "mem-4k", "mem-default")}


@pytest.mark.rule("U-SOCK-1")
@pytest.mark.parametrize("memory", list(SMALL))
def test_large_transfer_both_ways(make_server, connect, memory):
    """The counted stream echoed both ways at once: WRAPS times MHD's
    largest buffer (its memory pool) or one TLS record, whichever is larger."""
    size = wrapping(SMALL[memory])
    echo_counted(connect(make_server(memory_limit=SMALL[memory])), size)


# U-SOCK-4: backpressure. The application's pressure script (upgraded.c,
# run_pressure) and the client each send a counted stream and read the
# other's; at each hold one side stops reading until the other's sending
# is blocked, so that every buffer between them is full; then both drain.
# The memory limits are the rule's: the default and those well above it
# (small limits are U-SOCK-1's, whose echo both ways keeps MHD's small pool
# full all along; holds with them, until 2026-12, killed no mutant more).
HOLDS = 3
HOLD_LIMITS = ("mem-default", "mem-64k", "mem-1m")
HOLD_CASES = {f"both-{name}": ("both", MEMORY_LIMITS[name]) for name in HOLD_LIMITS}
HOLD_CASES.update({"read-mem-default": ("read", None), "write-mem-default": ("write", None)})


@pytest.mark.rule("U-SOCK-4")
@pytest.mark.parametrize("case", list(HOLD_CASES))
def test_backpressure_fills_and_drains(make_server, connect, control, observe, case):
    hold, memory = HOLD_CASES[case]
    server = make_server(memory_limit=memory)
    # The first step between holds: the largest buffer the case knows of
    # (the socket buffers it set); the next ones follow what the path held
    # (whatever MHD makes of its pool, the holds fill it), so that each
    # step drains every buffer on the path.
    step = wrapping(None, SOCKBUF, wraps=1)
    conn = connect(server, sockbuf=SOCKBUF)
    conn.request(server.url("/upgrade", then="pressure", hold=hold, pauses=HOLDS, n=step, inoff=7, sockbuf=SOCKBUF))
    expect_101(conn)

    def release(**query):
        path = server.url("/release", of=conn.rid, **query)
        assert control(server, path) == 200, f"GET {path}: the pressure script was gone"
    flow = pressure.drive(conn, release, step, HOLDS, hold in ("read", "both"), origin=7)
    end = flow.end
    observe({"sent": flow.sent, "received": len(flow.received), "in_flight": flow.in_flight()})
    check_bytes(bytes(flow.received), counted(len(flow.received)), what="the application's counted stream",
                context=f"holds: {flow.holds}")
    assert (end["how"], end["read"], end["first_mismatch"]) == ("done", flow.sent, -1), (
        f"the client sent {flow.sent} bytes; the application read {end['read']} and its stream ended "
        f"{end['how']!r}" + (f", differing from offset {end['first_mismatch']} on" if end["first_mismatch"] >= 0
                             else "") + f" (holds: {flow.holds})")
    held = {"read": end["holds_read"], "write": end["holds_write"]}
    want = {d: HOLDS if hold in (d, "both") else held[d] for d in held}
    assert held == want, f"the application held {held} times, expected {want}"
    finish(conn)


@pytest.mark.rule("U-SOCK-2")
def test_socket_properties(server, connect, measure):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"))
    expect_101(conn)
    call = conn.wait_event("upgraded")
    measure({k: call.get(k) for k in ("nonblocking", "cloexec", "family", "tcp_nodelay", "tcp_cork")})


def _option(value):
    """A getsockopt() value, or the error it failed with (-1 - errno)."""
    return value if value >= 0 else errno.errorcode.get(-1 - value, str(-1 - value))


def _call(err):
    return "ok" if err == 0 else errno.errorcode.get(err, str(err))


@pytest.mark.rule("U-SOCK-3")
@pytest.mark.tls_only
def test_tcp_options_on_tls_socket(server, connect, measure):
    """What TCP-level options and ioctl() do on the socket handed over
    under HTTPS, and whether they reach the client's TCP connection."""
    conn = connect(server)
    conn.request(server.url("/upgrade", then="sockopts", until=len(ECHO_CHECK)))
    expect_101(conn)
    seen = conn.wait_event("sockopts")
    echo_and_finish(conn)
    measure({
        "sock_is_tcp_socket": seen["sock_is_tcp_socket"],
        "family": seen["family"],
        "getsockopt(TCP_NODELAY)": _option(seen["getsockopt_tcp_nodelay"]),
        "setsockopt(TCP_NODELAY, 1)": _call(seen["setsockopt_tcp_nodelay"]),
        "setsockopt(SO_KEEPALIVE, 1)": _call(seen["setsockopt_so_keepalive"]),
        "ioctl(FIONREAD)": _call(seen["ioctl_fionread"]),
        "tcp TCP_NODELAY before/after": [_option(seen["tcp_nodelay_before"]), _option(seen["tcp_nodelay_after"])],
        "tcp SO_KEEPALIVE before/after": [_option(seen["tcp_keepalive_before"]),
                                          _option(seen["tcp_keepalive_after"])],
    })
