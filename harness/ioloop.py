"""The harness's one selector loop: what the exchange of a connection
(client.Conn.exchange), the backpressure run (pressure.drive) and the
benchmark's transfers (tools/bench.py) each do with the same steps, told
apart only by their callbacks. Standard library only."""

import selectors

from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


def run(watched, ready, done, timeout, judge=None):
    """Until done() says so: waits at most timeout() seconds for the files
    watched() gives this round, as (file, mask) pairs (a mask of 0, or a
    file left out, is not watched), hands each ready one to ready(file,
    mask), then calls judge(). done() is asked before each round, judge()
    after it: a verdict on progress goes in judge(), so that what came
    while this process was not running (a loaded machine) is seen before
    the verdict."""
    sel = selectors.DefaultSelector()
    try:
        while not done():
            _watch(sel, dict(watched()))
            for key, mask in sel.select(timeout()):
                ready(key.fileobj, mask)
            if judge is not None:
                judge()
    finally:
        sel.close()


def _watch(sel, wanted):
    """Registers with `sel` exactly what `wanted` ({file: mask}) asks for."""
    for key in list(sel.get_map().values()):
        if not wanted.get(key.fileobj):
            sel.unregister(key.fileobj)
    for file, mask in wanted.items():
        if not mask:
            continue
        try:
            key = sel.get_key(file)
        except KeyError:
            sel.register(file, mask)
            continue
        if key.events != mask:
            sel.modify(file, mask)
