"""SOCK: the socket handed to the application (rule catalogue, SOCK)."""

import hashlib

import pytest

from harness.checks import expect_101, finish
from harness.client import pattern

SIZE = 16 << 20
MEMORY_LIMITS = {"mem-default": None, "mem-4k": 4096}


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
