"""URLs of the reference server's scenarios, checked against the server's
own list of query keys (`refserver --keys`, printed from the one table in
servers/querykeys.c): a key that the path does not accept is refused here,
with the keys it does accept, before any request is made. Standard library
only."""

import functools
import json
import subprocess
import urllib.parse


class UnknownKey(ValueError):
    """A query key the path does not accept (the server would answer 400)."""


@functools.cache
def query_keys(binary):
    """The server's query keys: [{"key", "paths", "value", "script_param",
    "about"}], "paths" ["*"] for a key every path accepts."""
    proc = subprocess.run([str(binary), "--keys"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} --keys failed ({proc.returncode}): {proc.stderr.strip()}; "
                           "rebuild the reference server (./conformance builds it)")
    return tuple(json.loads(proc.stdout, object_hook=lambda d: {k: tuple(v) if isinstance(v, list) else v
                                                                 for k, v in d.items()}))


def accepted(keys, path):
    """The keys (from query_keys) that a request to `path` may carry, in
    the table's order; keys "x-..." are free besides (servers/querykeys.c)."""
    return [k["key"] for k in keys if path in k["paths"] or "*" in k["paths"]]


def scenario_url(keys, path, **query):
    """`path` with `query` as its query string, in the order given: True is
    "1", False and None leave the key out, anything else is str() and
    percent-encoded. Raises UnknownKey for a key `path` does not accept
    (`keys`: query_keys(binary))."""
    allowed = accepted(keys, path)
    unknown = [k for k in query if k not in allowed and not k.startswith("x-")]
    if unknown:
        raise UnknownKey(f"{path} accepts no query key {', '.join(unknown)}: it accepts "
                         f"{' '.join(allowed) or 'none'} (servers/querykeys.c declares them)")
    pairs = [(k, "1" if v is True else str(v)) for k, v in query.items() if v is not None and v is not False]
    return path + ("?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote) if pairs else "")


def upgrade_url(binary, path="/upgrade", **query):
    """scenario_url with the keys of the server `binary`."""
    return scenario_url(query_keys(str(binary)), path, **query)
