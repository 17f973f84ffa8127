"""Headless Chromium for the report tests: the page's DOM after its
scripts ran, a screenshot, and the screenshot's pixels (standard library
only). Without chromium a test skips, unless CI requires it
(CONFORMANCE_BROWSER_TESTS=required)."""

import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

BROWSER = shutil.which("chromium")
REQUIRED = os.environ.get("CONFORMANCE_BROWSER_TESTS") == "required"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--force-device-scale-factor=1"]
# Where a probe leaves what it measured in the page, for --dump-dom to show.
PROBE = ("<script>document.body.dataset.probe = JSON.stringify((() => {{ {} }})());</script>")


def need():
    if not BROWSER:
        if REQUIRED:
            pytest.fail("chromium is required (CONFORMANCE_BROWSER_TESTS=required) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def _run(args):
    need()
    done = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(page, size=(1400, 1000)):
    return _run([f"--window-size={size[0]},{size[1]}", "--dump-dom", page.as_uri()])


def measure(page, script, size):
    """What `script` (a JavaScript function body that returns a value)
    finds in `page` laid out in a window of `size`."""
    probed = page.with_name(page.stem + f"-probe-{size[0]}.html")
    probed.write_text(page.read_text().replace("</body>", PROBE.format(script) + "</body>"))
    found = re.search(r'data-probe="([^"]*)"', dump_dom(probed, size))
    assert found, "the probe did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page, size):
    """[(r, g, b)] of the window's first screen, and its width."""
    shot = page.with_name(page.stem + f"-{size[0]}.png")  # kept in the test's tmp_path, to look at
    _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", page.as_uri()])
    return png_pixels(shot.read_bytes())


def png_pixels(png):
    """[(r, g, b)] of an 8-bit RGB or RGBA, non-interlaced PNG (Chromium's
    screenshots), and its width."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, head = 8, b"", None
    while at < len(png):
        size, kind = struct.unpack(">I4s", png[at:at + 8])
        body = png[at + 8:at + 8 + size]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + size
    width, height, depth, colour_type, _, _, interlace = head
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, head
    step = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * step
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - step] if x >= step else 0
            b, c = prev[x], prev[x - step] if x >= step else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return [tuple(row[x:x + 3]) for row in rows for x in range(0, stride, step)], width


def colour(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def state_pixels(pixels, style):
    """How many pixels have each state's background colour (from `style`)."""
    backgrounds = dict(re.findall(r"\.s-(\w+) \{ background: (#[0-9a-f]{6})", style))
    return {key: sum(p == colour(hex_colour) for p in pixels) for key, hex_colour in backgrounds.items()}
