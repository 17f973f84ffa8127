"""LOAD: many upgraded connections at once (rule catalogue, LOAD)."""

import pytest

from harness.checks import expect_101, expect_orderly_end, server_survives
from harness.client import WireError, pattern
from harness.deadlines import scaled
from harness.streams import check_bytes

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
        conn.request(server.url("/upgrade", then="echo", until=ROUNDS * (1000 + 37 * i)))
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
            check_bytes(conn.read_exact(len(want)), want, what=f"round {rnd}: connection {conn.rid}'s echo")
    for conn in conns:
        end = conn.wait_event("echo_end")
        assert (end["how"], end["bytes"]) == ("until", len(sent[conn.rid])), (
            f"connection {conn.rid}: the application's echo ended {end}")
        expect_orderly_end(conn, after=f"connection {conn.rid}, after CLOSE", story=False)

BURST = 24  # half of them upgrades
BURST_SECONDS = 3  # scaled: every answer is due within milliseconds on loopback

@pytest.mark.rule("U-LOAD-2")
def test_upgrades_do_not_stall_other_connections(private_server, connect):
    """Many clients' requests at once, every other one an upgrade, and then
    nothing more from any client: every 101 and every ordinary answer must
    come. A loop that skipped the ready connections after an upgrade in
    the same pass leaves some waiting for activity that never comes."""
    server = private_server()
    conns = [connect(server) for _ in range(BURST)]
    for i, conn in enumerate(conns):
        if i % 2:
            conn.request(server.url("/upgrade", then="echo", until=1, idle=int(scaled(BURST_SECONDS + 5) * 1000)))
        else:
            conn.request("/hello", upgrade=None)
    late = []
    for i, conn in enumerate(conns):
        try:
            head = conn.read_head(seconds=BURST_SECONDS)
        except WireError as e:
            late.append(f"{'upgrade' if i % 2 else 'request'} {conn.rid}: {str(e).splitlines()[0]}")
            continue
        want = 101 if i % 2 else 200
        if head.status != want:
            late.append(f"{conn.rid}: {head.status_line()!r}, expected {want}")
    assert not late, f"{len(late)} of {BURST} clients got no answer in time:\n" + "\n".join(late)
    for conn in conns[1::2]:
        assert conn.exchange(b"x", 1) == b"x"
