"""harness/leaks.py: what counts as a leak, and how it is named."""

from harness import leaks

BEFORE = {"fds": 13, "connections": 1, "upgraded_handles": 0, "upgraded_threads": 0}


def test_same_figures_leak_nothing():
    assert leaks.grown(BEFORE, dict(BEFORE)) == []


def test_lower_figures_are_no_leak():
    # An upgraded connection an earlier, failed case left may end meanwhile.
    assert leaks.grown(BEFORE, dict(BEFORE, fds=12, connections=0)) == []


def test_each_grown_figure_is_named_with_its_values():
    after = dict(BEFORE, fds=15, upgraded_handles=1)
    assert leaks.grown(BEFORE, after) == [
        "2 open descriptors (fds 13 -> 15)",
        "1 upgraded handle not closed (upgraded_handles 0 -> 1)",
    ]


def test_unknown_figures_are_not_compared():
    # A server that cannot count its descriptors reports -1.
    assert leaks.grown(dict(BEFORE, fds=-1), dict(BEFORE, fds=20)) == []
