"""upgrade-conformance harness.

At the top, what cases import: the raw HTTP/TLS client (client, codec), the
checks, WebSocket helpers (ws), the reference server's process (server),
deadlines and the findings about a stream judged by progress (streams),
certificates, transfer sizes and the backpressure driver, plus the
catalogue, modes, baselines and every verdict (outcome) they share with
the rest, and the options that choose what a run tests (options: --mhd,
--rule, --mode, --transport, declared once for the CLI and the plugin). Below it, by audience:
  plugin/   the pytest machinery: hooks, fixtures, the per-case gate plumbing
  interop/  the real WebSocket clients of U-WS-6 (Chromium, Node's ws,
            aiohttp, wsproto, websockets) behind one interface
  reports/  what a run writes: results.json, summary.md, report.html, the
            matrix, compare, the kill matrix and the flake check
  tools/    the commands: building the reference server and MHD, the
            Debian packages, selftest, bench. Those the CLI runs before any
            third-party module is installed use the standard library only
            (tests/test_layout.py checks it)."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent  # the checkout
