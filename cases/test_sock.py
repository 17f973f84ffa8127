"""SOCK: the socket handed to the application (rule catalogue, SOCK)."""

import errno
import hashlib

import pytest

from harness.checks import ECHO_CHECK, expect_101, expect_echo, finish
from harness.client import pattern

SIZE = 16 << 20
MEMORY_LIMITS = {"mem-default": None, "mem-4k": 4096, "mem-1k": 1024}


@pytest.mark.rule("U-SOCK-1")
@pytest.mark.parametrize("memory", list(MEMORY_LIMITS))
def test_large_transfer_both_ways(make_server, connect, memory):
    conn = connect(make_server(memory_limit=MEMORY_LIMITS[memory]))
    conn.request(f"/upgrade?then=echo&until={SIZE}")
    expect_101(conn)
    data = pattern(SIZE, 7)
    echoed = conn.exchange(data, len(data))
    if echoed != data:
        first = next(i for i, (a, b) in enumerate(zip(echoed, data)) if a != b)
        raise AssertionError(f"{SIZE} bytes echoed both ways at once differ from offset {first}")
    end = conn.wait_event("echo_end")
    assert (end["how"], end["bytes"], end["sha256"]) == ("until", SIZE, hashlib.sha256(data).hexdigest()), (
        f"the application's read ended {end['how']!r} after {end['bytes']} bytes; {SIZE} were sent")
    finish(conn)


@pytest.mark.rule("U-SOCK-2")
def test_socket_properties(server, connect, measure):
    conn = connect(server)
    conn.request("/upgrade?then=close")
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
    conn.request(f"/upgrade?then=sockopts&until={len(ECHO_CHECK)}")
    expect_101(conn)
    seen = conn.wait_event("sockopts")
    expect_echo(conn)
    finish(conn)
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
