"""Known behaviours of the real clients (baselines/clients.json): data
with signatures, met as a baseline's deviation is (harness/baseline.py),
but whose the behaviour is says the client, never MHD. They hold for
every MHD version: a client's behaviour is the client's.

    {"schema": 1, "behaviours": {NAME: {"client": "chromium",
        "observed": "...", "evidence": "...",
        "signatures": [{"kind": ..., "pattern": ...}],
        "cases": ["test_closing_handshake_with_a_status_code[*-chromium]"]}}}"""

import json

from .. import outcome
from ..baseline import BASELINES, BaselineError, check_entry, matches

PATH = BASELINES / "clients.json"
RULE = "U-WS-6"


def load(path=PATH):
    """{name: entry} of the known client behaviours; BaselineError names
    what is wrong with the file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise BaselineError(f"{path}: cannot read the known client behaviours: {e}") from None
    behaviours = data.get("behaviours") or {}
    for name, entry in behaviours.items():
        check_entry(RULE, entry, f"{path} ({name})")
        if not entry.get("client"):
            raise BaselineError(f"{path} ({name}): no 'client' (one of harness/interop/clients.py NAMES)")
    return behaviours


def expectation(behaviours, name, client):
    """The outcome.Expectation of case `name` of `client` when a known
    behaviour of that client covers it, else None."""
    for title, entry in behaviours.items():
        if entry["client"] == client and any(matches(name, pat) for pat in entry.get("cases", [])):
            return outcome.Expectation(rule=RULE, version=f"clients.json ({title})", observed=entry.get("observed", ""),
                                       evidence=entry.get("evidence", ""), signatures=entry["signatures"],
                                       whose=f"client {client}")
    return None
