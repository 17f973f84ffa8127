"""bench's figures as text (spread, comparison, what moved), the order its
samples are taken in, and its SVG plot."""

import xml.etree.ElementTree as ET

import pytest

from harness.tools import benchplot
from harness.tools.refecho import moved, number, spread, taken_in_turn, versus

MIB = 1 << 20


@pytest.mark.parametrize("mhd, ref, higher_is_better, text", [
    (0.3, 230.0, True, "767x slower"),      # the 1.3e-03x of issue 24
    (501.9, 473.5, True, "1.06x faster"),
    (0.533, 0.046, False, "11.6x slower"),
    (44.03, 0.0507, False, "868x slower"),
    (0.0001, 1234567.0, True, "12345670000x slower"),
    (0.0, 230.0, True, "nothing moved"),
    (5.0, 5.0, True, "same"),
])
def test_a_comparison_reads_as_words_and_never_in_scientific_notation(mhd, ref, higher_is_better, text):
    assert versus(mhd, ref, higher_is_better) == text


@pytest.mark.parametrize("value", [1.3e-3, 2.9e-5, 0.5, 12.34, 999.9, 1.5e9])
def test_numbers_are_plain(value):
    assert "e" not in number(value)


def test_few_samples_spread_over_all_of_them_many_over_their_middle_half():
    assert spread([3.0, 1.0, 2.0]) == "2.00 (min-max 1.00-3.00)"
    assert spread([float(v) for v in range(1, 10)]) == "5.00 (IQR 2.50-7.50)"


def test_what_moved_says_how_much_of_what_and_in_all():
    assert moved([16 * MIB] * 3, 16 * MIB, 10) == "16 MiB per run, 48 MiB in all"
    assert moved([MIB // 2, MIB, 16 * MIB], 16 * MIB, 10) == (
        "1 MiB of 16 MiB per run (2 of 3 cut at 10 s), 17.5 MiB in all")


def test_samples_are_taken_in_turn_so_that_a_load_change_hits_both():
    calls = []
    samples = taken_in_turn([lambda: calls.append("mhd") or 1, lambda: calls.append("ref") or 2], 3)
    assert calls == ["mhd", "ref", "ref", "mhd", "mhd", "ref"]
    assert samples == [[1, 1, 1], [2, 2, 2]]


def test_the_plot_is_svg_with_one_point_per_mode_and_series():
    panels = [{"title": f"{t}, 1 connection", "rows": [
        {"label": mode, "mhd": [0.3, 0.2, 0.4], "reference": [230.0, 240.0, 250.0]}
        for mode in ("epoll", "select", "tpc")]} for t in ("plain", "https")]
    panels[1]["rows"].append({"label": "poll", "mhd": [0.0], "reference": []})  # nothing moved, no reference
    root = ET.fromstring(benchplot.render("bench: MHD 0.9.75 <system> & co", panels))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    drawn = root.findall("svg:g[@class='panel']", ns)
    assert len(drawn) == 2
    for group, panel in zip(drawn, panels):
        for series in ("mhd", "reference"):
            points = group.findall(f"svg:circle[@class='{series}']", ns)
            assert [p.find("svg:title", ns).text.split()[0] for p in points] == [
                r["label"] for r in panel["rows"] if r[series]]
