"""./conformance bench --ws: WebSocket echo through MHD's upgrade, next to
the same bytes echoed without MHD or WebSocket. Not a test: it measures.

Per transport (ws:// on plain, wss:// on https), mode and message size
(64 B, 16 KiB, 1 MiB), MHD and the reference taken in turn, each figure as
the median and spread of its samples:
  - round trip: one message sent, its echo received (ms);
  - throughput: --mib MiB each way in messages of that size, sent and
    received at once (MB/s each way; messages/s); a transfer not done
    within --max-seconds counts what it moved by then, and the line says
    how much that was.
Client: the websockets library (asyncio). Reference: the reference
server's --raw-echo (raw TCP, and TLS with GnuTLS), the same sizes as plain
bytes through asyncio streams. Each MHD figure is compared with the
reference's in words. --json keeps every sample; --svg (by default next
to --json) plots MB/s per mode and size, MHD against the reference."""

import argparse
import asyncio
import contextlib
import statistics
import time

from .. import ws
from ..client import pattern
from ..server import RefServer, ServerError

from .refecho import (SPREAD_NOTE, WARMUP, begin, figure_line, keep, moved, number, parse_and_run, plot_row, references,
                      settle, table_head, taken_in_turn, write_outputs)

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
        self.server, self.ctx = server, pki.client_context() if pki else None
        self.count = 0

    @contextlib.asynccontextmanager
    async def channel(self):
        """A connection to the echo: trip(message) sends it and waits for its echo."""
        self.count += 1
        rid = f"wsbench-{self.count:07d}"
        try:
            async with ws.Session(self.server, rid, self.ctx).connect() as conn:
                async def trip(message):
                    await conn.send(message)
                    await conn.recv()
                yield trip
        finally:
            await asyncio.to_thread(settle, self.server, [rid])

    async def transfer(self, size, count, max_seconds):
        message = pattern(size)
        got = 0
        self.count += 1
        rid = f"wsbench-{self.count:07d}"
        async with ws.Session(self.server, rid, self.ctx).connect() as conn:
            async def send_all():
                for _ in range(count):
                    await conn.send(message)

            async def receive_all():
                nonlocal got
                for _ in range(count):
                    got += len(await conn.recv())
            elapsed = await both_ways(send_all, receive_all, max_seconds)
        await asyncio.to_thread(settle, self.server, [rid])
        return got, elapsed


class RawStream:
    """The same bytes through the echo without MHD (refserver --raw-echo)."""

    def __init__(self, server, pki):
        self.server, self.ctx = server, pki.client_context() if pki else None

    async def _open(self):
        return await asyncio.open_connection("127.0.0.1" if self.ctx is None else "localhost", self.server.port,
                                             ssl=self.ctx)

    @contextlib.asynccontextmanager
    async def channel(self):
        reader, writer = await self._open()
        try:
            async def trip(message):
                writer.write(message)
                await reader.readexactly(len(message))
            yield trip
        finally:
            writer.close()

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


async def round_trips(targets, size, times):
    """`times` round trips of one message through each target, taken in
    turn on one open connection each, after WARMUP untimed ones (they pay
    for caches and page faults)."""
    message = pattern(size)
    async with contextlib.AsyncExitStack() as stack:
        trips = [await stack.enter_async_context(t.channel()) for t in targets]

        async def timed(trip):
            started = time.monotonic()
            await trip(message)
            return time.monotonic() - started
        for _ in range(WARMUP):
            for trip in trips:
                await trip(message)
        out = [[] for _ in targets]
        for i in range(times):
            order = list(zip(trips, out))
            for trip, samples in order if i % 2 == 0 else reversed(order):
                samples.append(await timed(trip))
    return out


def measure(mhd, ref, size, args):
    """(MHD's figures, the reference's) for one message size."""
    count = max(1, min(MAX_MESSAGES, (args.mib << 20) // size))
    trips = asyncio.run(round_trips([mhd, ref], size, args.latency_runs))
    runs = taken_in_turn([lambda t=t: asyncio.run(t.transfer(size, count, args.max_seconds)) for t in (mhd, ref)],
                         args.runs)
    sides = []
    for trip, run_ in zip(trips, runs):
        mb_s = [got / elapsed / 1e6 for got, elapsed in run_]
        sides.append({"size": size, "messages": count, "rtt_ms": statistics.median(trip) * 1000,
                      "mb_s": statistics.median(mb_s), "msg_s": statistics.median(mb_s) * 1e6 / size,
                      "complete": all(got >= size * count for got, _ in run_),
                      "rtt_ms_samples": [v * 1000 for v in trip], "mb_s_samples": mb_s,
                      "bytes": [got for got, _ in run_]})
    return sides


def print_size(label, r, ref, args):
    wanted = r["size"] * r["messages"]
    print(figure_line(label + " round trip ms", 22, r, ref, "rtt_ms", higher_is_better=False))
    print(figure_line(label + " MB/s", 22, r, ref, "mb_s", True,
                      f"{moved(r['bytes'], wanted, args.max_seconds)} ({number(r['msg_s'])} messages/s)"), flush=True)


def run(args):
    binary, version, out, amounts = begin(args, "round trips")
    print(f"bench --ws: MHD {version} ({args.mhd or 'system'}), up to {args.mib} MiB (at most {MAX_MESSAGES} "
          f"messages) each way per run; {amounts}")
    print(f"{SPREAD_NOTE}\nRound trip: lower is better; MB/s (each way): higher is better.")
    out.update(mib=args.mib)
    panels = []
    for transport, pki, reference in references(binary, args):
        scheme = "wss" if pki else "ws"
        plots = {size: {"title": f"{scheme}://, {label} messages", "rows": []} for label, size in SIZES.items()}
        ref = RawStream(reference, pki)
        for mode in args.mode:
            server = RefServer(binary, mode, transport, tls=pki).start()
            print(f"\n{scheme} {mode.name}: MHD and the reference taken in turn\n{table_head(22)}")
            echo = WsEcho(server, pki)  # one per server: its request ids must not repeat there
            try:
                for label, size in SIZES.items():
                    try:
                        r, r_ref = measure(echo, ref, size, args)
                    except (OSError, AssertionError, ServerError, asyncio.TimeoutError,
                            ws.websockets.exceptions.WebSocketException) as e:
                        print(f"  {label:<22} failed: {str(e).splitlines()[0]}")
                        continue
                    print_size(label, r, r_ref, args)
                    keep(out, transport, mode, r, r_ref)
                    plots[size]["rows"].append(plot_row(mode, r, r_ref, "mb_s_samples"))
            finally:
                server.stop()
        panels += [p for p in plots.values() if p["rows"]]
    write_outputs(args, out, panels, f"bench --ws: MHD {version}, up to {args.mib} MiB each way per run")
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="conformance bench --ws", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", metavar="MIB", type=int, default=16,
                   help=f"MiB each way per throughput figure, at most {MAX_MESSAGES} messages (16)")
    return parse_and_run(p, argv, run, latency_help="round trips per figure (25)")
