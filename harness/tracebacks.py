"""Which frames of the suite's own helpers a failure's traceback shows.

A helper module sets `__tracebackhide__ = tracebacks.hidden` at module
level; pytest consults it for every frame of that module. When the failure
is a finding about MHD (an AssertionError the harness raised about what it
saw, a reset, a TLS error) the helpers' frames are left out, so that the
console shows the case's own line and the rule's words. A fault of the
harness itself keeps every frame, for whoever debugs it."""

import ssl


def hidden(excinfo):
    return excinfo is not None and isinstance(excinfo.value, (AssertionError, ConnectionError, ssl.SSLError))
