"""Facts about this MHD: what the measure rules measured (the largest
extra_in, the upgraded socket's flags, which thread runs the handler, what
an HTTP/1.0 request gets, ...), each distinct value with where it was
seen. In summary.md and report.html, for the application developer who
needs to know them rather than judge them."""

import json
import re

from .. import modes

_PARAM = re.compile(r"\[(.*)\]$")


def _where(names):
    """The cells (and other parameters) of case names, in few words: every
    mode over a transport when all ten measured it."""
    params = [m.group(1) if (m := _PARAM.search(n)) else n for n in names]
    by_transport = {}
    rest = []
    for p in params:
        found = next(((m.name, t, p[len(f"{m.name}-{t}"):].lstrip("-")) for m in modes.MODES
                      for t in modes.TRANSPORTS if p == f"{m.name}-{t}" or p.startswith(f"{m.name}-{t}-")), None)
        if found:
            by_transport.setdefault((found[1], found[2]), set()).add(found[0])
        else:
            rest.append(p)
    parts = []
    for extra in list(dict.fromkeys(e for _, e in by_transport)):  # every mode over both transports: said once
        if all(len(by_transport.get((t, extra), ())) == len(modes.MODES) for t in modes.TRANSPORTS):
            parts.append("every mode, both transports" + (f" ({extra})" if extra else ""))
            for t in modes.TRANSPORTS:
                del by_transport[(t, extra)]
    for (transport, extra), names_ in by_transport.items():
        cells = ("every mode" if len(names_) == len(modes.MODES)
                 else ", ".join(m.name for m in modes.MODES if m.name in names_))
        parts.append(f"{cells} over {transport}" + (f" ({extra})" if extra else ""))
    return "; ".join(parts + rest)


def facts(results):
    """[(rule ID, [(value as text, where)])] of the measure rules that
    measured, most common value first."""
    out = []
    for rule_id, entry in results.get("rules", {}).items():
        observed = entry.get("observed") if entry.get("kind") == "measure" else None
        if not observed:
            continue
        by_value = {}
        for name, value in observed.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            by_value.setdefault(text, []).append(name)
        ranked = sorted(by_value.items(), key=lambda kv: -len(kv[1]))
        out.append((rule_id, [(text, _where(names)) for text, names in ranked]))
    return out


def markdown(results, catalog):
    found = facts(results)
    if not found:
        return []
    lines = ["## Facts about this MHD", "",
             "What the measure rules measured: each value, and where it was seen.", "",
             "| Rule | What it measures | Value | Where |", "|---|---|---|---|"]
    for rule_id, values in found:
        what = catalog[rule_id].promise if rule_id in catalog else ""
        what = (what[:77] + "...") if len(what) > 80 else what
        for i, (text, where) in enumerate(values):
            lines.append(f"| {rule_id if i == 0 else ''} | {what.replace('|', chr(92) + '|') if i == 0 else ''} | "
                         f"`{text.replace('|', chr(92) + '|')}` | {where} |")
    return lines + [""]


def html(results, catalog, esc):
    """report.html's section (esc: its escaping)."""
    found = facts(results)
    if not found:
        return []
    out = ['<h2 id="facts">Facts about this MHD</h2>',
           "<p>What the measure rules measured: each value, and where it was seen.</p>",
           '<table class="rest"><tr><th>rule</th><th>what it measures</th><th>value</th><th>where</th></tr>']
    for rule_id, values in found:
        what = catalog[rule_id].promise if rule_id in catalog else ""
        for i, (text, where) in enumerate(values):
            head = (f'<td class=rid rowspan="{len(values)}">{rule_id}</td><td rowspan="{len(values)}">{esc(what)}</td>'
                    if i == 0 else "")
            out.append(f'<tr data-fact="{rule_id}">{head}<td><code>{esc(text)}</code></td><td>{esc(where)}</td></tr>')
    out.append("</table>")
    return out
