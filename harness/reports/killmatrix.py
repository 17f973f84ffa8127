"""The kill matrix: which cases fail against which mutant MHD.

`./conformance selftest --mutants` runs the suite once per mutant of
servers/mutants.c (LD_PRELOAD into the reference server): by default only
the cases of the rules the mutant was built to break (its own rules, named
in mutants.c's table), with --all-rules every case. A mutant is killed
when at least one case does not behave as the baseline says (failed or
error). A mutant that no case of its own rules kills shows a bug the
suite would miss where it claims to look, and fails the self-test; so does
one that no case kills at all."""

from .. import catalog, outcome

# A kill that says little: nearly every case failed (the mutant broke
# everything), so no rule in particular caught it.
WEAK_SHARE = 0.8
WEAK_MIN_CASES = 20


def killers(data):
    """The cases of one mutant run that did not behave as the baseline says."""
    return outcome.killed((data or {}).get("cases", []))


def by_client(data, sees):
    """{client: "killed" | "missed" | "blind"} for the real clients of a
    run with interop cases (None without them): killed when a case of that
    client failed; missed when the client can see the mutant (`sees`: ""
    every client, else a Client feature) and none did; blind when it cannot."""
    cases = (data or {}).get("cases", [])
    from ..interop.clients import NAMES, with_feature  # only the interop runs need the clients
    ran = [n for n in NAMES if any(c.get("client") == n for c in cases)]
    if sees is None or not ran:
        return None
    able = set(ran) if not sees else set(with_feature(sees))
    hit = {c["client"] for c in outcome.killed(cases) if c.get("client")}
    return {client: "killed" if client in hit else "missed" if client in able else "blind" for client in ran}


def build(runs, own=None, sees=None, breaks=None):
    """runs: [(mutant, pytest exit status, results or None)], own: {mutant:
    its own rules} (None: not known), sees: {mutant: which real clients
    must catch it (Mutant.clients)}, breaks: {mutant: what it does wrong
    (Mutant.breaks)} -> the matrix."""
    table = {"mutants": {}, "rules": {}}
    for name, rc, data in runs:
        cases = killers(data)
        rules = sorted({r for c in cases for r in c["rules"]})
        run = len((data or {}).get("cases", []))
        mine = (own or {}).get(name)
        table["mutants"][name] = {
            "killed": bool(cases),
            "own_rules": mine,
            "breaks": (breaks or {}).get(name),
            # None when its own rules are not known
            "by_own_rule": None if mine is None else bool(set(mine) & set(rules)),
            "weak": bool(cases) and run >= WEAK_MIN_CASES and len(cases) >= WEAK_SHARE * run,
            "exit_status": rc,
            "cases_run": run,
            "killed_by": len(cases),
            "rules": rules,
            "example": cases[0]["id"] if cases else None,
            # A run that did not finish (no results) kills nothing we can name.
            "completed": data is not None,
            "clients": by_client(data, (sees or {}).get(name)),
        }
        for rule in rules:
            table["rules"].setdefault(rule, []).append(name)
    table["survivors"] = [n for n, m in table["mutants"].items() if not m["killed"]]
    # killed, but not by a case of the rule it breaks
    table["astray"] = [n for n, m in table["mutants"].items() if m["killed"] and m["by_own_rule"] is False]
    # a real client that can see the mutant and did not catch it (U-WS-6)
    table["missed_by_clients"] = {n: [c for c, how in m["clients"].items() if how == "missed"]
                                  for n, m in table["mutants"].items()
                                  if m["clients"] and "missed" in m["clients"].values()}
    return table


def passed(table):
    return not table["survivors"] and not table.get("astray") and not table.get("missed_by_clients")


def text(table):
    lines = []
    width = max([len(n) for n in table["mutants"]] + [6])
    for name, m in table["mutants"].items():
        if m["killed"]:
            lines.append(f"{name:<{width}}  killed by {m['killed_by']:>3}/{m['cases_run']} cases"
                         + (" (WEAK: nearly every case failed)" if m.get("weak") else "")
                         + f": {' '.join(m['rules'])}"
                         + (f" (NOT by its own rule {', '.join(m['own_rules'])})"
                            if m.get("by_own_rule") is False else "")
                         + (f"; real clients: {_clients_text(m['clients'])}" if m.get("clients") else ""))
        else:
            why = "" if m["completed"] else f" (the run did not finish: exit {m['exit_status']})"
            lines.append(f"{name:<{width}}  SURVIVED: no case failed{why}")
    return "\n".join(lines)


def _clients_text(clients):
    return ", ".join(f"{c} {'MISSED it' if how == 'missed' else how}" for c, how in clients.items())


def _clients_markdown(table):
    rows = {n: m["clients"] for n, m in table["mutants"].items() if m.get("clients")}
    if not rows:
        return []
    from ..interop.clients import NAMES  # only a matrix with interop runs has this table
    seen = {c for clients in rows.values() for c in clients}
    names = [c for c in NAMES if c in seen] + sorted(seen - set(NAMES))
    word = {"killed": "killed", "missed": "**MISSED**", "blind": "cannot see it"}
    out = ["", "Real clients (U-WS-6): each mutant against each client's cases; a client that can see the mutant "
           "must catch it.", "", "| mutant | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, clients in rows.items():
        out.append(f"| `{name}` | " + " | ".join(word.get(clients.get(c), "") for c in names) + " |")
    return out


def markdown(table):
    astray = table.get("astray", [])
    out = ["# Kill matrix", "",
           f"{len(table['mutants'])} mutants, {len(table['survivors'])} survived"
           + (f", {len(astray)} killed only outside their own rule" if astray else "")
           + (f", {len(table['missed_by_clients'])} missed by a real client that can see it"
              if table.get("missed_by_clients") else "") + ".", "",
           "| mutant | what it breaks | its own rule | killed by cases | rules whose cases kill it |",
           "|---|---|---|---|---|"]
    for name, m in table["mutants"].items():
        killed = f"{m['killed_by']} of {m['cases_run']}" if m["killed"] else "**SURVIVED**"
        if m.get("weak"):
            killed += " (weak: nearly every case failed)"
        if m.get("by_own_rule") is False:
            killed += " (**not by its own rule**)"
        says = (m.get("breaks") or "?").replace("|", "\\|")
        out.append(f"| `{name}` | {says} | {', '.join(m.get('own_rules') or []) or '?'} | {killed} "
                   f"| {', '.join(m['rules'])} |")
    out += _clients_markdown(table)
    out += ["", "| rule | mutants it kills |", "|---|---|"]
    for rule in sorted(table["rules"], key=catalog.sort_key):
        out.append(f"| {rule} | {', '.join(table['rules'][rule])} |")
    return "\n".join(out) + "\n"

