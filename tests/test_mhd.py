"""./conformance mhd: version names and choosing a source package, without
the network (the archive's answer is given)."""

import pytest

from harness.tools import mhd

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


def test_mirror_comes_from_the_systems_apt_sources(tmp_path, monkeypatch):
    lists = tmp_path / "sources.list.d"
    lists.mkdir()
    (tmp_path / "sources.list").write_text(
        "# a comment\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian/ bookworm main\n"
        "deb http://security.debian.org/debian-security bookworm-security main\n")
    (lists / "debian.sources").write_text(
        "Types: deb deb-src\nURIs: http://second.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n")
    paths = (tmp_path / "sources.list", lists)
    assert mhd.system_mirrors(paths) == ["http://mirror.example/debian", "http://second.example/debian"]
    monkeypatch.delenv(mhd.MIRROR_ENV, raising=False)
    real = mhd.system_mirrors
    monkeypatch.setattr(mhd, "system_mirrors", lambda: real(paths))
    assert mhd.mirror() == "http://mirror.example/debian"
    monkeypatch.setenv(mhd.MIRROR_ENV, "http://override.example/debian/")
    assert mhd.mirror() == "http://override.example/debian"


def test_no_archive_in_the_apt_sources_names_the_variable(monkeypatch):
    monkeypatch.delenv(mhd.MIRROR_ENV, raising=False)
    monkeypatch.setattr(mhd, "system_mirrors", lambda paths=None: [])
    with pytest.raises(mhd.MhdError) as e:
        mhd.mirror()
    assert e.value.code == 2 and mhd.MIRROR_ENV in str(e.value)


def test_asserts_builds_have_their_own_prefix_and_configure_flag(tmp_path):
    assert mhd.prefix_for("1.0.10", asserts=True).name == "1.0.10-asserts"
    assert "--enable-asserts" in mhd.configure_args(tmp_path, False, asserts=True)
    assert "--enable-asserts" not in mhd.configure_args(tmp_path, False)
