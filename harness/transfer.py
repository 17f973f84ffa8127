"""How large a case's transfer must be: large enough that every buffer
between client and application fills and drains many times, and no
larger (U-SOCK-1/4, U-EXTRA-2). A buffer that wraps shows the bugs of its
edges (a partial send, a full buffer, a wrap-around); volume alone does
not.

The buffers a case knows of: MHD's, carved from the connection's memory
pool (the memory limit; MHD's default is 32 KiB); one TLS record (16 KiB);
the client's and the application's socket buffers, which the cases shrink
to SOCKBUF (the kernel doubles what is asked). MHD's own kernel buffers
can be larger still (its TCP send buffer grows to MiBs): the backpressure
cases fill them by waiting until a writer is blocked, not by volume.

--volume N (CONFORMANCE_VOLUME) multiplies every transfer, for a thorough
run."""

import hashlib
import os
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames

VOLUME_ENV = "CONFORMANCE_VOLUME"
# The memory limits the transfer cases run with: small ones that make MHD
# stop reading early, MHD's default, and large ones (with HTTPS, MHD then
# forwards more than one TLS record at a time).
MEMORY_LIMITS = {"mem-1k": 1024, "mem-4k": 4096, "mem-default": None, "mem-64k": 65536, "mem-1m": 1 << 20}
MHD_DEFAULT_POOL = 32 * 1024  # MHD_POOL_SIZE_DEFAULT
TLS_RECORD = 16 * 1024
SOCKBUF = 32 * 1024  # asked of SO_SNDBUF/SO_RCVBUF; smaller ones make loopback TCP crawl
# How many times the largest buffer's worth goes through, at least. Each
# wrap meets the edges again (a partial send, a full buffer, the wrap
# itself); 8 do so in every mode, with every limit, in both directions at
# once. 32 (until 2026-12) made 0.9.75, which forwards TLS in small
# pieces, pump four times the bytes, and killed one mutant more: a byte changed
# after 1 MiB (stream-corrupt-large), which the rules that name 1 MiB
# (U-EXTRA-2, U-WS-3) kill in every mode.
WRAPS = 8


def volume():
    """The --volume multiplier (a positive integer, default 1)."""
    raw = os.environ.get(VOLUME_ENV, "1")
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{VOLUME_ENV}={raw!r} is not a whole number (e.g. 1, 4)") from None
    if value < 1:
        raise SystemExit(f"{VOLUME_ENV}={raw!r} must be 1 or more")
    return value


def largest_buffer(memory_limit, sockbuf=None):
    """The largest buffer on the path that the case knows the size of:
    MHD's pool, a TLS record, and the socket buffers if the case set them
    (to `sockbuf`: the kernel doubles it)."""
    return max(memory_limit or MHD_DEFAULT_POOL, TLS_RECORD, 2 * (sockbuf or 0))


def wrapping(memory_limit, sockbuf=None, wraps=WRAPS):
    """Bytes that make the largest known buffer wrap `wraps` times (times
    --volume)."""
    return wraps * largest_buffer(memory_limit, sockbuf) * volume()


def sha256(data):
    return hashlib.sha256(data).hexdigest()
