"""./conformance mhd: version names, choosing a source package (the
archive's answer is given), and source identities, without the network;
with CONFORMANCE_SLOW_TESTS=1, a release tarball built for real."""

import hashlib
import json
import os
import pathlib
import subprocess
import tarfile

import pytest

from harness import ROOT
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


def test_coverage_builds_have_their_own_prefix_and_gcov_flags(tmp_path):
    assert mhd.prefix_for("1.0.10", coverage=True).name == "1.0.10-coverage"
    args = mhd.configure_args(tmp_path, False, coverage=True)
    assert "CFLAGS=-O0 -g --coverage" in args and "LDFLAGS=--coverage" in args


def tarball_of(tmp_path, files):
    src = tmp_path / "libmicrohttpd-9.9.9"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    out = tmp_path / "libmicrohttpd-9.9.9.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return out


def test_a_tarball_is_known_by_its_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(mhd, "MHD_ROOT", tmp_path / "mhd")
    path = tarball_of(tmp_path, {"configure.ac": "AC_INIT\n"})
    tree, meta = mhd.source_of_tarball(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["sha256"] == digest and meta["version"] == f"tar-{digest[:12]}"
    assert tree.name == "libmicrohttpd-9.9.9" and (tree / "configure.ac").exists()
    assert mhd.prefix_for(meta["version"], coverage=True).name == f"tar-{digest[:12]}-coverage"


@pytest.mark.parametrize("content", [b"not a tarball", None], ids=["garbage", "missing"])
def test_a_bad_tarball_is_a_usage_error(tmp_path, monkeypatch, content):
    monkeypatch.setattr(mhd, "MHD_ROOT", tmp_path / "mhd")
    path = tmp_path / "x.tar.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(mhd.MhdError) as e:
        mhd.source_of_tarball(path)
    assert e.value.code == 2 and "--tarball" in str(e.value)


def test_a_tarball_without_mhd_source_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mhd, "MHD_ROOT", tmp_path / "mhd")
    with pytest.raises(mhd.MhdError) as e:
        mhd.source_of_tarball(tarball_of(tmp_path, {"README": "hello\n"}))
    assert e.value.code == 2 and "no MHD source tree" in str(e.value)


@pytest.mark.skipif(os.environ.get("CONFORMANCE_SLOW_TESTS") != "1",
                    reason="builds MHD: set CONFORMANCE_SLOW_TESTS=1 (CI does)")
def test_a_release_tarball_builds_into_its_own_prefix(tmp_path):
    tree = mhd.fetch_source(mhd.resolve("1.0.10")[1])
    path = tmp_path / "libmicrohttpd-1.0.10.tar.gz"

    def release_file(info):  # upstream's files, with one time, as in a release tarball
        if info.name.split("/")[1:2] in (["debian"], [".pc"]):
            return None
        info.mtime = 1700000000
        return info

    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname="libmicrohttpd-1.0.10", filter=release_file)
    run = [str(ROOT / "conformance"), "mhd", "build", "--tarball", str(path)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prefix = pathlib.Path(proc.stdout.strip().splitlines()[-1])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert prefix.name == f"tar-{digest[:12]}"
    marker = json.loads((prefix / mhd.MARKER).read_text())
    assert marker["source"] == "tarball" and marker["sha256"] == digest
    again = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already built" in again.stderr
