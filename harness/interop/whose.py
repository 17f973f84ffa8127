"""Whose fault an interop failure is, said at the head of its message:

  [reference server]  the server's own events show its fault (wslay could
                      not queue an echo, memory ran out): not a finding
                      about MHD; fix servers/websocket.c
  [client NAME]       the client gave up before the server saw its
                      handshake: what the client does on its own (its TLS
                      checks, its URL rules)
  [MHD, U-WS-6]       anything else: what passed through MHD's upgrade
                      was not what the client and the server exchanged

A behaviour of a client that is known (baselines/clients.json) is data with
a signature, met like a baseline's deviation (harness/baseline.py)."""

import contextlib

from ..tracebacks import hidden as _hidden

__tracebackhide__ = _hidden

# Server events that are the reference server's own failure.
REFERENCE_FAULTS = {"ws_queue_failed"}
REFERENCE_ENDS = {"out-of-memory"}


def whose(session):
    events = session.events()
    if any(e["ev"] in REFERENCE_FAULTS or (e["ev"] == "ws_end" and e.get("how") in REFERENCE_ENDS)
           for e in events):
        return "reference server"
    if not any(e["ev"] == "ws_handshake" for e in events):
        return f"client {session.client.name}"
    return "MHD, U-WS-6"


@contextlib.contextmanager
def fault(session):
    """Re-raises a finding (an AssertionError of any kind) with whose it is
    at its head; the exception's class, its failure kind, stays."""
    try:
        yield
    except AssertionError as e:
        try:
            relabelled = type(e)(f"[{whose(session)}] {e}")
        except TypeError:
            relabelled = AssertionError(f"[{whose(session)}] {e}")
        raise relabelled.with_traceback(e.__traceback__) from None
