"""The interop table (U-WS-6): a row per real client and transport, a
column per mode; each cell the state of that client's cases there, with
the rule matrix's symbols and N/M (harness/outcome.py STATES). In
results.json ("interop"), summary.md and report.html."""

from .. import modes
from ..interop.clients import NAMES
from ..outcome import STATES, state


def clients_of(cases):
    """The clients the run's cases name, in the registry's order (a name it
    does not know, from an older run, last)."""
    named = {c["client"] for c in cases if c.get("client")}
    return [n for n in NAMES if n in named] + sorted(named - set(NAMES))


def table(cases):
    """{client: {transport: {mode ID: {"state", "conform", "cases"}}}};
    empty when the run had no interop case."""
    out = {}
    mine = [c for c in cases if c.get("client")]
    for client in clients_of(mine):
        for transport in modes.KNOWN_TRANSPORTS:
            for mode in modes.MODES:
                here = [c for c in mine if c["client"] == client and c["transport"] == transport
                        and c["mode"] == mode.id]
                if here:
                    out.setdefault(client, {}).setdefault(transport, {})[mode.id] = {
                        "state": state(here), "cases": len(here),
                        "conform": sum(c["verdict"] == "conforms" for c in here)}
    return out


def per_client(cases):
    """{client: {"state", "conform", "cases"}} over all of a run's cells:
    a version's row in the version matrix."""
    out = {}
    for client in clients_of(cases):
        mine = [c for c in cases if c.get("client") == client]
        out[client] = {"state": state(mine), "cases": len(mine),
                       "conform": sum(c["verdict"] == "conforms" for c in mine)}
    return out


def rows(results):
    """(client, transport, {mode ID: cell}) per row, and the mode IDs of
    the columns, from a run's results."""
    found = results.get("interop") or {}
    lines = [(client, transport, cells) for client, by in found.items() for transport, cells in by.items()]
    cols = [m.id for m in modes.MODES if any(m.id in cells for _, _, cells in lines)]
    return lines, cols


def cell_text(cell):
    return f"{STATES[cell['state']][0]} {cell['conform']}/{cell['cases']}"


LEAD = ("Each cell: the state of that client's cases in that mode and transport, and how many of them "
        "conform.")


def markdown(results):
    """summary.md's interop section (no lines when the run had none)."""
    lines, cols = rows(results)
    if not lines:
        return []
    out = ["## Real clients (U-WS-6)", "",
           LEAD + " " + "; ".join(f"{sym} {words}" for sym, words in STATES.values()) + ".", "",
           "| Client | Transport | " + " | ".join(modes.lookup(m).name for m in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for client, transport, cells in lines:
        out.append(f"| {client} | {transport} | "
                   + " | ".join(cell_text(cells[m]) if m in cells else "" for m in cols) + " |")
    return out + [""]
