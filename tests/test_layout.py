"""What the sources must agree on, read statically (nothing is built or
run): the events the reference server writes and their list in
spec/events.md."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVERS = ROOT / "servers"


def written_events():
    """{event: {"fields": set, "files": set}} from servers/*.c."""
    out = {}

    def add(name, fields, path):
        entry = out.setdefault(name, {"fields": set(), "files": set()})
        entry["fields"].update(fields)
        entry["files"].add(path.name)

    for path in sorted(SERVERS.glob("*.c")):
        text = path.read_text()
        for m in re.finditer(r'ev_begin \(&e, "(\w+)"', text):
            body = text[m.end():text.index("ev_end (&e)", m.end())]
            add(m.group(1), re.findall(r'ev_\w+ \(&e, "(\w+)"', body), path)
        # Helpers that write an event whose name they are given, with fields
        # of their own (scenarios.c: report_result; upgraded.c: report_hold).
        for m in re.finditer(r'report_result \([^,]+, "(\w+)"', text):
            add(m.group(1), ["what", "result"], path)
        for m in re.finditer(r'report_hold \(ps, "(\w+)", (NULL|"\w+")', text):
            add(m.group(1), ["k", "read", "sent"] + (["dir"] if m.group(2) != "NULL" else []), path)
    return out


def documented_events():
    out = {}
    for line in (ROOT / "spec" / "events.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[a-z_]+", cells[0]) and cells[0] != "event":
            out[cells[0]] = {"fields": set(cells[1].split()), "files": set(cells[2].split())}
    return out


def test_every_event_written_is_documented_with_its_fields():
    written, documented = written_events(), documented_events()
    assert written, "no event found in servers/*.c: the pattern no longer fits the sources"
    assert sorted(set(written) - set(documented)) == [], "events written but not in spec/events.md"
    assert sorted(set(documented) - set(written)) == [], "events in spec/events.md that nothing writes"
    wrong = {name: {"written": sorted(w["fields"]), "documented": sorted(documented[name]["fields"])}
             for name, w in written.items() if w["fields"] != documented[name]["fields"]}
    assert wrong == {}, "fields differ between servers/*.c and spec/events.md"
    files = {name: (sorted(w["files"]), sorted(documented[name]["files"]))
             for name, w in written.items() if w["files"] != documented[name]["files"]}
    assert files == {}, "files differ between servers/*.c and spec/events.md"
