"""What each event of the reference server says (spec/events.md, the one
place it is written): for a message about an event that did not come, in
MHD's terms rather than the harness's."""

import functools

from . import ROOT

SPEC = ROOT / "spec" / "events.md"


@functools.cache
def _table():
    rows = {}
    for line in SPEC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] not in ("event", "---"):
            rows[cells[0]] = cells[3]
    return rows


def meaning(name):
    """The event's "what it says", or "" for a name the table lacks."""
    return _table().get(name, "")
