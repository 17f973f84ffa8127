"""./conformance bench: how fast MHD's upgraded connections are, next to
the same work without MHD. Not a test: it judges nothing, it measures.

Per transport (plain, https) and mode it measures, each the median of
--runs runs:
  - latency: from sending the upgrade request to having the whole 101 head
    (the TCP and TLS handshakes are not counted); the reference is the
    round trip of a request-sized message through the echo without MHD;
  - throughput of one upgraded connection echoing --size MiB each way at
    once, and of 16 such connections at once (MB/s each way, summed over
    the connections); a transfer not done within --max-seconds counts what
    it moved by then (marked '>').
The reference (raw TCP loopback, and TLS with GnuTLS, MHD's TLS library)
is the reference server's --raw-echo: the same C echo with no MHD. Every
MHD figure is also printed as a ratio to its reference."""

import argparse
import json
import pathlib
import selectors
import statistics
import tempfile
import time

from .. import certs
from ..client import Conn, build_request, pattern
from ..server import RefServer, ServerError
from . import build
from .refecho import REFERENCE, WARMUP, RawEcho, fmt, parse_and_run

CONCURRENT = 16


def pump(conns, size, max_seconds):
    """Sends `size` bytes on each connection while reading the echo, all at
    once; returns (bytes echoed back in all, seconds, done)."""
    sel = selectors.DefaultSelector()
    state = {}
    payload = pattern(size)
    for conn in conns:
        conn.sock.setblocking(False)
        state[conn.sock] = {"conn": conn, "out": memoryview(conn.codec.encode(payload)), "got": 0}
        sel.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    started = time.monotonic()
    until = started + max_seconds
    open_ = len(conns)
    try:
        while open_ and time.monotonic() < until:
            for key, mask in sel.select(timeout=min(1.0, max(0.0, until - time.monotonic()))):
                s = state[key.fileobj]
                if mask & selectors.EVENT_WRITE and s["out"]:
                    try:
                        n = key.fileobj.send(s["out"][:262144])
                    except BlockingIOError:
                        n = 0
                    s["out"] = s["out"][n:]
                    if not s["out"]:
                        sel.modify(key.fileobj, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    try:
                        raw = key.fileobj.recv(262144)
                    except BlockingIOError:
                        continue
                    if not raw:
                        raise RuntimeError("the echo ended the connection early")
                    s["got"] += len(s["conn"].codec.decode(raw))
                    if s["got"] >= size:
                        sel.unregister(key.fileobj)
                        open_ -= 1
        elapsed = time.monotonic() - started
    finally:
        sel.close()
        for conn in conns:
            conn.sock.setblocking(True)
    got = sum(s["got"] for s in state.values())
    return got, elapsed, got >= size * len(conns)


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
            conn.request(f"/upgrade?then=echo&until={size}")
            conn.read_head()
        return conn

    def latency(self):
        conn = self.connect()
        try:
            message = build_request("/upgrade?then=close", conn.rid)
            started = time.monotonic()
            conn.send(message)
            if self.upgrade:
                conn.read_head()
            else:
                conn.read_exact(len(message))  # the echo's answer to a request-sized message
            return time.monotonic() - started
        finally:
            conn.close()

    def throughput(self, size, count, max_seconds):
        conns = [self.open_stream(size) for _ in range(count)]
        try:
            got, elapsed, done = pump(conns, size, max_seconds)
        finally:
            for conn in conns:
                conn.close()
        return got / elapsed / 1e6, done


def measure(target, args):
    for _ in range(WARMUP):
        target.latency()
    lat = statistics.median(target.latency() for _ in range(args.latency_runs))
    one, many = [], []
    for _ in range(args.runs):
        one.append(target.throughput(args.size << 20, 1, args.max_seconds))
    for _ in range(args.runs):
        many.append(target.throughput(args.size << 20, CONCURRENT, args.max_seconds))
    return {
        "latency_ms": lat * 1000,
        "one_mb_s": statistics.median(v for v, _ in one),
        "one_complete": all(d for _, d in one),
        "concurrent_mb_s": statistics.median(v for v, _ in many),
        "concurrent_complete": all(d for _, d in many),
    }


def run(args):
    binary = build.ensure_server(args.mhd)
    version = build.server_version(binary)["mhd_version"]
    print(f"bench: MHD {version} ({args.mhd or 'system'}), {args.size} MiB each way, "
          f"medians of {args.runs} run{'s' if args.runs != 1 else ''} ({args.latency_runs} for latency, after "
          f"{WARMUP} to warm up), cap {args.max_seconds:g} s per transfer")
    print("(x): the ratio to the reference; latency: lower is better, MB/s: higher is better")
    out = {"mhd_version": version, "mhd": args.mhd, "size_mib": args.size, "runs": args.runs,
           "max_seconds": args.max_seconds, "concurrent": CONCURRENT, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in args.transport:
            pki = certs.TestPKI(pathlib.Path(tmp)) if transport == "https" else None
            print(f"\n{transport:<6} {'mode':<11} {'101 latency ms':>20} {'1 conn MB/s':>20} "
                  f"{f'{CONCURRENT} conns MB/s':>20}")
            ref = None
            for mode in [REFERENCE, *args.mode]:
                cls = RawEcho if mode is REFERENCE else RefServer
                server = cls(binary, mode, transport, tls=pki).start()
                try:
                    r = measure(Target(server, pki, upgrade=mode is not REFERENCE), args)
                except (OSError, RuntimeError, AssertionError, ServerError) as e:
                    print(f"{transport:<6} {mode.name:<11} failed: {str(e).splitlines()[0]}")
                    continue
                finally:
                    server.stop()
                ref = ref or r
                base = None if mode is REFERENCE else ref
                print(f"{transport:<6} {mode.name:<11} "
                      f"{fmt(r['latency_ms'], base and base['latency_ms'], digits=3):>20} "
                      f"{fmt(r['one_mb_s'], base and base['one_mb_s'], r['one_complete']):>20} "
                      f"{fmt(r['concurrent_mb_s'], base and base['concurrent_mb_s'], r['concurrent_complete']):>20}",
                      flush=True)
                out["results"].append(dict(r, transport=transport, mode=mode.id))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"\nbench: figures in {args.json}")
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
