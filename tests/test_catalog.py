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
