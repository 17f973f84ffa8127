"""./conformance bench: how fast MHD's upgraded connections are, next to
the same work without MHD. Not a test: it judges nothing, it measures.

Per transport (plain, https) and mode it measures, MHD and the reference
taken in turn (so that a change of load hits both), each figure as the
median and spread of its samples:
  - latency: from sending the upgrade request to having the whole 101 head
    (the TCP and TLS handshakes are not counted); the reference is the
    round trip of a request-sized message through the echo without MHD;
  - throughput of one upgraded connection echoing --size MiB each way at
    once, and of 16 such connections at once (MB/s each way, summed over
    the connections); a transfer not done within --max-seconds counts what
    it moved by then, and the line says how much that was.
The reference (raw TCP loopback, and TLS with GnuTLS, MHD's TLS library)
is the reference server's --raw-echo: the same C echo with no MHD, on a
socket with the same options. Each MHD figure is compared with the
reference's in words ('1.30x slower'). --json keeps every sample; --svg
(by default next to --json) plots MB/s per mode, MHD against the
reference. Exit status: 0, 2 bad usage, 3 the server cannot be built,
130 interrupted."""

import argparse
import selectors
import statistics
import time

from .. import ioloop
from ..client import Conn, build_request, pattern
from ..server import RefServer, ServerError

from .refecho import (SPREAD_NOTE, WARMUP, begin, figure_line, keep, moved, parse_and_run, plot_row, references, settle,
                      table_head, taken_in_turn, write_outputs)

CONCURRENT = 16


def pump(conns, size, max_seconds):
    """Sends `size` bytes on each connection while reading the echo, all at
    once; returns (bytes echoed back in all, seconds)."""
    payload = pattern(size)
    conn_of = {conn.sock: conn for conn in conns}
    out = {conn.sock: memoryview(conn.codec.encode(payload)) for conn in conns}  # still to send
    got = dict.fromkeys(conn_of, 0)  # plaintext echoed back
    started = time.monotonic()
    until = started + max_seconds

    def watched():
        return [(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if out[sock] else 0))
                for sock in conn_of if got[sock] < size]

    def ready(sock, mask):
        conn = conn_of[sock]
        if mask & selectors.EVENT_WRITE and out[sock]:
            n = conn.send_nowait(out[sock][:262144])
            if n is None:
                raise RuntimeError(f"the echo ended the connection early ({conn.end})")
            out[sock] = out[sock][n:]
        if mask & selectors.EVENT_READ:
            data = conn.recv_nowait()
            if data == b"":
                raise RuntimeError(f"the echo ended the connection early ({conn.end})")
            got[sock] += len(data or b"")

    def done():
        return all(n >= size for n in got.values()) or time.monotonic() >= until

    for conn in conns:
        conn.sock.setblocking(False)
    try:
        ioloop.run(watched, ready, done, lambda: min(1.0, max(0.0, until - time.monotonic())))
        elapsed = time.monotonic() - started
    finally:
        for conn in conns:
            conn.sock.setblocking(True)
    return sum(got.values()), elapsed


class Target:
    """One server to measure: MHD in a mode, or the reference echo."""

    def __init__(self, server, pki, upgrade):
        self.server, self.pki, self.upgrade = server, pki, upgrade
        self.count = 0

    def connect(self):
        self.count += 1
        ctx = self.pki.client_context() if self.pki else None
        return Conn(self.server, f"bench-{self.count:07d}", tls_context=ctx)

    def open_stream(self, size):
        """A connection ready to echo `size` bytes each way."""
        conn = self.connect()
        if self.upgrade:
            conn.request(self.server.url("/upgrade", then="echo", until=size))
            conn.read_head()
        return conn

    def latency(self):
        conn = self.connect()
        try:
            message = build_request(self.server.url("/upgrade", then="close"), conn.rid)  # the same bytes to both
            if not self.upgrade:
                # The echo's answer to a request-sized message, once its
                # thread for the connection runs: creating that thread is
                # not a cost MHD's event loop has, and it made the
                # reference's latency 0.05 to 1.4 ms on a loaded machine.
                conn.send(message)
                conn.read_exact(len(message))
            started = time.monotonic()
            conn.send(message)
            if self.upgrade:
                conn.read_head()
            else:
                conn.read_exact(len(message))
            return time.monotonic() - started
        finally:
            conn.close()
            self.settle([conn])

    def throughput(self, size, count, max_seconds):
        """(bytes echoed back in all, seconds)"""
        conns = [self.open_stream(size) for _ in range(count)]
        try:
            got, elapsed = pump(conns, size, max_seconds)
        finally:
            for conn in conns:
                conn.close()
            self.settle(conns)
        return got, elapsed

    def settle(self, conns):
        if self.upgrade:
            settle(self.server, [conn.rid for conn in conns])


def throughput_figure(runs, wanted):
    """One side's throughput samples: (bytes echoed back, seconds) per run."""
    mb_s = [got / seconds / 1e6 for got, seconds in runs]
    return {"mb_s": statistics.median(mb_s), "mb_s_samples": mb_s, "bytes": [got for got, _ in runs],
            "complete": all(got >= wanted for got, _ in runs)}


def measure(mhd, ref, args):
    """Every figure of MHD in a mode and of the reference, their samples
    taken in turn; returns (MHD's figures, the reference's)."""
    for _ in range(WARMUP):
        mhd.latency()
        ref.latency()
    size = args.size << 20
    latency = taken_in_turn([mhd.latency, ref.latency], args.latency_runs)
    one = taken_in_turn([lambda t=t: t.throughput(size, 1, args.max_seconds) for t in (mhd, ref)], args.runs)
    many = taken_in_turn([lambda t=t: t.throughput(size, CONCURRENT, args.max_seconds) for t in (mhd, ref)],
                         args.runs)
    sides = []
    for lat, o, m in zip(latency, one, many):
        o, m = throughput_figure(o, size), throughput_figure(m, size * CONCURRENT)
        sides.append({  # the first keys are those of the first bench files (medians only)
            "latency_ms": statistics.median(lat) * 1000, "one_mb_s": o["mb_s"], "one_complete": o["complete"],
            "concurrent_mb_s": m["mb_s"], "concurrent_complete": m["complete"],
            "latency_ms_samples": [v * 1000 for v in lat],
            "one_mb_s_samples": o["mb_s_samples"], "one_bytes": o["bytes"],
            "concurrent_mb_s_samples": m["mb_s_samples"], "concurrent_bytes": m["bytes"]})
    return sides


def print_mode(transport, mode, r, ref, args):
    size = args.size << 20
    print(f"\n{transport} {mode.name}: MHD and the reference taken in turn\n{table_head(16)}")
    print(figure_line("101 latency ms", 16, r, ref, "latency_ms", higher_is_better=False))
    for label, key, wanted in (("1 conn MB/s", "one", size), (f"{CONCURRENT} conns MB/s", "concurrent", size * CONCURRENT)):
        print(figure_line(label, 16, r, ref, key + "_mb_s", True, moved(r[key + "_bytes"], wanted, args.max_seconds)),
              flush=True)


def run(args):
    binary, version, out, amounts = begin(args, "requests")
    print(f"bench: MHD {version} ({args.mhd or 'system'}), {args.size} MiB each way per connection; {amounts}")
    print(f"{SPREAD_NOTE}\nLatency: lower is better; MB/s (each way, summed over the connections): higher is better.")
    out.update(size_mib=args.size, concurrent=CONCURRENT)
    panels = []
    for transport, pki, reference in references(binary, args):
        plots = {key: {"title": f"{transport}, {label}", "rows": []}
                 for key, label in (("one", "1 connection"), ("concurrent", f"{CONCURRENT} connections"))}
        ref = Target(reference, pki, upgrade=False)
        for mode in args.mode:
            server = RefServer(binary, mode, transport, tls=pki).start()
            try:
                r, r_ref = measure(Target(server, pki, upgrade=True), ref, args)
            except (OSError, RuntimeError, AssertionError, ServerError) as e:
                print(f"\n{transport} {mode.name}: failed: {str(e).splitlines()[0]}")
                continue
            finally:
                server.stop()
            print_mode(transport, mode, r, r_ref, args)
            keep(out, transport, mode, r, r_ref)
            for key, plot in plots.items():
                plot["rows"].append(plot_row(mode, r, r_ref, key + "_mb_s_samples"))
        panels += [p for p in plots.values() if p["rows"]]
    write_outputs(args, out, panels, f"bench: MHD {version}, {args.size} MiB each way per connection")
    return 0


def main(argv):
    if "--ws" in argv:
        from . import wsbench
        return wsbench.main([a for a in argv if a != "--ws"])
    p = argparse.ArgumentParser(prog="conformance bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ws", action="store_true",
                   help="measure the WebSocket echo instead (see: conformance bench --ws --help)")
    p.add_argument("--size", metavar="MIB", type=int, default=16, help="MiB each way per connection (16)")
    return parse_and_run(p, argv, run, latency_help="requests per latency figure (25)")
