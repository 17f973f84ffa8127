"""./conformance mhd: version names and choosing a source package, without
the network (the archive's answer is given)."""

import pytest

from harness import mhd

ARCHIVE = [("0.9.75", "0.9.75-6", "bookworm"), ("1.0.1", "1.0.1-4", "trixie"), ("1.0.10", "1.0.10-1", "sid")]


def test_upstream_drops_epoch_and_debian_revision():
    assert mhd.upstream("1.0.10-1") == "1.0.10"
    assert mhd.upstream("1:0.9.75-6+deb12u1") == "0.9.75"
    assert mhd.upstream("1.0.1") == "1.0.1"


def test_versions_sort_numerically():
    assert sorted(["1.0.10-1", "0.9.75-6", "1.0.1-4"], key=mhd._key) == ["0.9.75-6", "1.0.1-4", "1.0.10-1"]


@pytest.mark.parametrize("asked", ["1.0.10", "1.0.10-1"])
def test_resolve_by_upstream_or_debian_version(monkeypatch, asked):
    monkeypatch.setattr(mhd, "available", lambda: ARCHIVE)
    assert mhd.resolve(asked) == ("1.0.10", "1.0.10-1", "sid")


def test_unknown_version_names_the_available_ones(monkeypatch):
    monkeypatch.setattr(mhd, "available", lambda: ARCHIVE)
    with pytest.raises(mhd.MhdError) as e:
        mhd.resolve("2.0")
    assert e.value.code == 2
    assert "available: 0.9.75, 1.0.1, 1.0.10" in str(e.value)


def test_sanitized_builds_have_their_own_prefix():
    assert mhd.prefix_for("1.0.10") != mhd.prefix_for("1.0.10", sanitize=True)
    assert mhd.prefix_for("1.0.10", sanitize=True).name == "1.0.10-sanitize"
