"""The repository's copy of the rule catalogue."""

import pathlib

import pytest

from harness import catalog

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "spec" / "upgrade-rules.md"


def test_every_rule_has_a_kind_and_family():
    rules = catalog.load()
    assert len(rules) >= 60
    for r in rules.values():
        assert r.kind in ("promise", "contract", "measure")
        assert r.id == f"U-{r.family}-{r.id.rsplit('-', 1)[1]}"


@pytest.mark.skipif(not SHARED.exists(), reason="no shared catalogue beside this checkout")
def test_copy_matches_the_shared_catalogue():
    assert catalog.SPEC.read_text() == SHARED.read_text(), (
        "spec/upgrade-rules.md differs from the shared catalogue: copy it over")


@pytest.mark.parametrize("given, expected", [
    (["U-EXTRA-1"], ["U-EXTRA-1"]),
    (["extra-1"], ["U-EXTRA-1"]),
    (["U-EXTRA"], ["U-EXTRA-*"]),
    (["extra"], ["U-EXTRA-*"]),
    (["EXTRA-1,u-act-2", "HALF"], ["U-EXTRA-1", "U-ACT-2", "U-HALF-*"]),
    (["U-EXTRA-*"], ["U-EXTRA-*"]),
])
def test_rule_patterns_take_families_short_ids_any_case_and_lists(given, expected):
    patterns, unmatched = catalog.rule_patterns(given, catalog.load())
    assert (patterns, unmatched) == (expected, [])


def test_rule_pattern_matching_nothing_is_named():
    patterns, unmatched = catalog.rule_patterns(["U-NOPE-1,extra-1"], catalog.load())
    assert unmatched == ["U-NOPE-1"]
    assert "U-EXTRA-1" in catalog.id_hint(catalog.load())
