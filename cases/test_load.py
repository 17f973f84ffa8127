"""LOAD: many upgraded connections at once (rule catalogue, LOAD)."""

import pytest

from harness.checks import expect_101, server_survives
from harness.client import pattern

CONNECTIONS = 64
ROUNDS = 4


@pytest.mark.rule("U-LOAD-1")
def test_many_upgraded_connections(private_server, connect):
    # A server of its own: if MHD corrupts its heap under this load (0.9.75
    # does, in thread-per-connection mode), no other case inherits that.
    server = private_server()
    with server_survives(server, f"with {CONNECTIONS} upgraded connections open or closing"):
        _load(server, connect)


def _load(server, connect):
    conns = [connect(server) for _ in range(CONNECTIONS)]
    for i, conn in enumerate(conns):
        # The server closes each once it echoed all rounds.
        conn.request(f"/upgrade?then=echo&until={ROUNDS * (1000 + 37 * i)}")
    for conn in conns:
        expect_101(conn)
    sent = {conn.rid: bytearray() for conn in conns}
    for rnd in range(ROUNDS):
        # Every connection has a chunk in flight before any is read back.
        for i, conn in enumerate(conns):
            chunk = pattern(1000 + 37 * i, offset=rnd * 5000 + i)
            conn.send(chunk)
            sent[conn.rid] += chunk
        for conn in conns:
            want = bytes(sent[conn.rid][-(1000 + 37 * conns.index(conn)):])
            got = conn.read_exact(len(want))
            assert got == want, f"round {rnd}: connection {conn.rid} got another stream's or changed bytes"
    for conn in conns:
        end = conn.wait_event("echo_end")
        assert (end["how"], end["bytes"]) == ("until", len(sent[conn.rid])), (
            f"connection {conn.rid}: the application's echo ended {end}")
        data, how = conn.read_to_end()
        assert (data, how) == (b"", conn.clean_end), (
            f"connection {conn.rid} did not end in order after CLOSE: {how} after {data[:50]!r}")
