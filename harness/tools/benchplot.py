"""bench's plot: MB/s per mode, MHD against the reference, as one SVG
(standard library only). One panel per figure (a transport and a
connection count, or a message size); in it one row per mode, with a dot
at each series' median and a line over its spread (min-max). The axis is
logarithmic: MHD and its reference can be 1000x apart."""

import math
import statistics
from xml.sax.saxutils import escape

SERIES = (("mhd", "MHD", "#1f77b4"), ("reference", "reference", "#7f7f7f"))
WIDTH, LEFT, RIGHT, ROW, HEAD = 760, 130, 20, 18, 44


def _decades(panels):
    values = [v for p in panels for r in p["rows"] for key, _, _ in SERIES for v in r[key] if v > 0]
    if not values:
        return 0, 1
    return math.floor(math.log10(min(values))), max(math.ceil(math.log10(max(values))), math.floor(math.log10(min(values))) + 1)


def render(title, panels):
    """panels: [{"title": str, "rows": [{"label": mode, "mhd": [MB/s...],
    "reference": [MB/s...]}]}] -> the SVG text."""
    low, high = _decades(panels)
    span = WIDTH - LEFT - RIGHT

    def x(v):  # nothing moved sits on the axis' left end
        return LEFT + span * (min(max(math.log10(v), low), high) - low) / (high - low) if v > 0 else LEFT

    out, y = [], 28
    out.append(f'<text x="{LEFT}" y="18" font-weight="bold">{escape(title)}</text>')
    for n, (key, name, colour) in enumerate(SERIES):
        out.append(f'<circle cx="{WIDTH - 200 + 90 * n}" cy="14" r="4" fill="{colour}"/>'
                   f'<text x="{WIDTH - 192 + 90 * n}" y="18">{name}</text>')
    for panel in panels:
        top = y + HEAD
        bottom = top + ROW * len(panel["rows"])
        out.append(f'<g class="panel"><text x="{LEFT}" y="{y + 24}" font-weight="bold">{escape(panel["title"])}</text>')
        for d in range(low, high + 1):
            gx = x(10 ** d)
            out.append(f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{bottom}" stroke="#ddd"/>'
                       f'<text x="{gx:.1f}" y="{top - 9}" text-anchor="middle" font-size="10">{10.0 ** d:g}</text>')
        for i, row in enumerate(panel["rows"]):
            cy = top + ROW * i + ROW / 2
            out.append(f'<text x="{LEFT - 8}" y="{cy + 4:.1f}" text-anchor="end">{escape(row["label"])}</text>')
            for n, (key, name, colour) in enumerate(SERIES):
                samples = row[key]
                if not samples:
                    continue
                sy = cy - 3 + 6 * n
                median = statistics.median(samples)
                out.append(f'<line x1="{x(min(samples)):.1f}" y1="{sy:.1f}" x2="{x(max(samples)):.1f}" '
                           f'y2="{sy:.1f}" stroke="{colour}" stroke-width="2"/>'
                           f'<circle class="{key}" cx="{x(median):.1f}" cy="{sy:.1f}" r="4" fill="{colour}">'
                           f'<title>{escape(row["label"])} {name}: {median:.3g} MB/s</title></circle>')
        out.append(f'<text x="{LEFT + span / 2}" y="{bottom + 14}" text-anchor="middle" font-size="10">'
                   'MB/s each way (log scale)</text></g>')
        y = bottom + 20
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y + 8}" '
            f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(out) + "\n</svg>\n")
