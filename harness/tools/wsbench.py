"""./conformance bench --ws: WebSocket echo through MHD's upgrade, next to
the same bytes echoed without MHD or WebSocket. Not a test: it measures.

Per transport (ws:// on plain, wss:// on https), mode and message size
(64 B, 16 KiB, 1 MiB), each the median of --runs runs:
  - round trip: one message sent, its echo received (ms);
  - throughput: --mib MiB each way in messages of that size, sent and
    received at once (MB/s each way; messages/s); a transfer not done
    within --max-seconds counts what it moved by then (marked '>').
Client: the websockets library (asyncio). Reference: the reference
server's --raw-echo (raw TCP, and TLS with GnuTLS), the same sizes as plain
bytes through asyncio streams. Every MHD figure is also printed as a ratio
to its reference."""

import argparse
import asyncio
import json
import pathlib
import statistics
import tempfile
import time

from .. import certs, ws
from ..client import pattern
from ..server import RefServer, ServerError
from . import build
from .refecho import REFERENCE, WARMUP, RawEcho, fmt, parse_and_run

SIZES = {"64B": 64, "16KiB": 16 << 10, "1MiB": 1 << 20}
MAX_MESSAGES = 20000  # per throughput run: small messages are bounded by count


async def both_ways(send_all, receive_all, max_seconds):
    """Sends and receives at once; the seconds until all came back, or
    until max_seconds (what came by then counts)."""
    started = time.monotonic()
    sender = asyncio.ensure_future(send_all())
    try:
        await asyncio.wait_for(receive_all(), max_seconds)
    except asyncio.TimeoutError:
        pass
    elapsed = time.monotonic() - started
    sender.cancel()
    return elapsed


class WsEcho:
    """The WebSocket echo of a reference server in one mode."""

    def __init__(self, server, pki):
        self.session = ws.Session(server, "wsbench", pki.client_context() if pki else None)

    async def round_trips(self, size, times):
        message = pattern(size)
        out = []
        async with self.session.connect() as conn:
            for _ in range(times):
                started = time.monotonic()
                await conn.send(message)
                await conn.recv()
                out.append(time.monotonic() - started)
        return out

    async def transfer(self, size, count, max_seconds):
        message = pattern(size)
        got = 0
        async with self.session.connect() as conn:
            async def send_all():
                for _ in range(count):
                    await conn.send(message)

            async def receive_all():
                nonlocal got
                for _ in range(count):
                    got += len(await conn.recv())
            elapsed = await both_ways(send_all, receive_all, max_seconds)
        return got, elapsed


class RawStream:
    """The same bytes through the echo without MHD (refserver --raw-echo)."""

    def __init__(self, server, pki):
        self.server, self.ctx = server, pki.client_context() if pki else None

    async def _open(self):
        return await asyncio.open_connection("127.0.0.1" if self.ctx is None else "localhost", self.server.port,
                                             ssl=self.ctx)

    async def round_trips(self, size, times):
        message = pattern(size)
        reader, writer = await self._open()
        out = []
        try:
            for _ in range(times):
                started = time.monotonic()
                writer.write(message)
                await reader.readexactly(size)
                out.append(time.monotonic() - started)
        finally:
            writer.close()
        return out

    async def transfer(self, size, count, max_seconds):
        message = pattern(size)
        reader, writer = await self._open()
        got = 0

        async def send_all():
            for _ in range(count):
                writer.write(message)
                await writer.drain()

        async def receive_all():
            nonlocal got
            while got < size * count:
                got += len(await reader.read(1 << 16))
        elapsed = await both_ways(send_all, receive_all, max_seconds)
        writer.close()
        return got, elapsed


def measure(target, size, args):
    count = max(1, min(MAX_MESSAGES, (args.mib << 20) // size))
    # The first round trips (WARMUP) pay for caches and page faults: not counted.
    trips = asyncio.run(target.round_trips(size, WARMUP + args.latency_runs))[WARMUP:]
    runs = [asyncio.run(target.transfer(size, count, args.max_seconds)) for _ in range(args.runs)]
    mb_s = [got / elapsed / 1e6 for got, elapsed in runs]
    return {"size": size, "messages": count, "rtt_ms": statistics.median(trips) * 1000,
            "mb_s": statistics.median(mb_s), "msg_s": statistics.median(mb_s) * 1e6 / size,
            "complete": all(got >= size * count for got, _ in runs)}


def run(args):
    binary = build.ensure_server(args.mhd)
    version = build.server_version(binary)["mhd_version"]
    print(f"bench --ws: MHD {version} ({args.mhd or 'system'}), up to {args.mib} MiB (at most {MAX_MESSAGES} "
          f"messages) each way per figure, medians of {args.runs} run{'s' if args.runs != 1 else ''} "
          f"({args.latency_runs} round trips after {WARMUP} to warm up), cap {args.max_seconds:g} s per transfer")
    print("(x): the ratio to the reference; round trip: lower is better, MB/s and messages/s: higher is better")
    out = {"mhd_version": version, "mhd": args.mhd, "mib": args.mib, "runs": args.runs, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in args.transport:
            pki = certs.TestPKI(pathlib.Path(tmp)) if transport == "https" else None
            scheme = "wss" if pki else "ws"
            print(f"\n{scheme:<4} {'mode':<11} {'size':>6} {'round trip ms':>20} {'MB/s each way':>20} "
                  f"{'messages/s':>20}")
            refs = {}
            for mode in [REFERENCE, *args.mode]:
                cls = RawEcho if mode is REFERENCE else RefServer
                server = cls(binary, mode, transport, tls=pki).start()
                target = RawStream(server, pki) if mode is REFERENCE else WsEcho(server, pki)
                try:
                    for label, size in SIZES.items():
                        try:
                            r = measure(target, size, args)
                        except (OSError, AssertionError, ServerError, asyncio.TimeoutError,
                                ws.websockets.exceptions.WebSocketException) as e:
                            print(f"{scheme:<4} {mode.name:<11} {label:>6} failed: {str(e).splitlines()[0]}")
                            continue
                        base = None if mode is REFERENCE else refs.get(size)
                        if mode is REFERENCE:
                            refs[size] = r
                        print(f"{scheme:<4} {mode.name:<11} {label:>6} "
                              f"{fmt(r['rtt_ms'], base and base['rtt_ms'], digits=3):>20} "
                              f"{fmt(r['mb_s'], base and base['mb_s'], r['complete']):>20} "
                              f"{fmt(r['msg_s'], base and base['msg_s'], r['complete'], digits=0):>20}",
                              flush=True)
                        out["results"].append(dict(r, transport=transport, mode=mode.id))
                finally:
                    server.stop()
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"\nbench --ws: figures in {args.json}")
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="conformance bench --ws", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", metavar="MIB", type=int, default=16,
                   help=f"MiB each way per throughput figure, at most {MAX_MESSAGES} messages (16)")
    return parse_and_run(p, argv, run, latency_help="round trips per figure (25)")
