"""SOCK: the socket handed to the application (rule catalogue, SOCK)."""

import hashlib

import pytest

from harness.checks import expect_101
from harness.client import pattern

SIZE = 16 << 20
MEMORY_LIMITS = {"mem-default": None, "mem-4k": 4096}


@pytest.mark.rule("U-SOCK-1")
@pytest.mark.parametrize("memory", list(MEMORY_LIMITS))
def test_large_transfer_both_ways(make_server, connect, memory):
    conn = connect(make_server(memory_limit=MEMORY_LIMITS[memory]))
    conn.request("/upgrade?then=echo")
    expect_101(conn)
    data = pattern(SIZE, 7)
    echoed = conn.exchange(data, len(data))
    if echoed != data:
        first = next(i for i, (a, b) in enumerate(zip(echoed, data)) if a != b)
        raise AssertionError(f"{SIZE} bytes echoed both ways at once differ from offset {first}")
    conn.shutdown_write()
    eof = conn.wait_event("peer_eof")
    assert (eof["bytes"], eof["sha256"]) == (SIZE, hashlib.sha256(data).hexdigest()), (
        f"the application read {eof['bytes']} bytes; {SIZE} were sent")
    assert conn.read_to_end() == (b"", conn.clean_end)


@pytest.mark.rule("U-SOCK-2")
def test_socket_properties(server, connect, measure):
    conn = connect(server)
    conn.request("/upgrade?then=echo")
    expect_101(conn)
    call = conn.wait_event("upgraded")
    measure({k: call.get(k) for k in ("nonblocking", "cloexec", "family", "tcp_nodelay", "tcp_cork")})
