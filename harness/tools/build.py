"""Builds the reference server with CMake: one build folder per MHD (the
system's, or an install prefix), rebuilt when the sources change. Safe to
call from several pytest-xdist workers at once (a file lock serialises
them)."""

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
from collections import namedtuple

from .. import ROOT
from .failure import tail

BUILD_ROOT = ROOT / "build"


class BuildError(Exception):
    """The server could not be built; the message names the cause and fix."""


def build_dir(prefix, sanitize=False):
    suffix = "-sanitize" if sanitize else ""
    if not prefix:
        return BUILD_ROOT / f"system{suffix}"
    real = os.path.realpath(prefix)
    tag = hashlib.sha1(real.encode()).hexdigest()[:10]
    return BUILD_ROOT / f"mhd-{pathlib.Path(real).name}-{tag}{suffix}"


def check_prefix(prefix):
    """A clear error for a prefix that cannot be an MHD install."""
    p = pathlib.Path(prefix)
    if not p.is_dir():
        raise BuildError(f"--mhd {prefix}: no such directory")
    if not (p / "include" / "microhttpd.h").is_file():
        raise BuildError(
            f"--mhd {prefix}: no include/microhttpd.h there. Give the prefix "
            "MHD was installed into (its ./configure --prefix, after make install)."
        )
    libs = list(p.glob("lib*/libmicrohttpd.so*")) + list(p.glob("lib/*/libmicrohttpd.so*"))
    if not libs:
        raise BuildError(f"--mhd {prefix}: no lib/libmicrohttpd.so there (was 'make install' run?)")


def _built_with_sanitizers(prefix):
    """True for a prefix that `conformance mhd build --sanitize` made."""
    try:
        return json.loads((pathlib.Path(prefix) / ".conformance-mhd.json").read_text()).get("sanitize", False)
    except (OSError, ValueError):
        return False


def _run(cmd, log):
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write_text(proc.stdout)
    return proc


def ensure_server(prefix=None, sanitize=False):
    """Returns the path of an up-to-date reference server for `prefix`;
    with `sanitize`, one built with AddressSanitizer and UBSan."""
    for tool in ("cmake", "cc", "pkg-config"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed: run ./conformance as root once, or apt-get install cmake gcc pkg-config")
    if prefix:
        check_prefix(prefix)
        if _built_with_sanitizers(prefix) and not sanitize:
            raise BuildError(f"--mhd {prefix} was built with sanitizers (mhd build --sanitize): the reference "
                             "server must be too; add --sanitize")
    bdir = build_dir(prefix, sanitize)
    bdir.mkdir(parents=True, exist_ok=True)
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (bdir / "CMakeCache.txt").exists():
            cmd = ["cmake", "-S", str(ROOT), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
            if prefix:
                cmd.append(f"-DMHD_ROOT={os.path.realpath(prefix)}")
            if sanitize:
                cmd.append("-DREFSERVER_SANITIZE=ON")
            proc = _run(cmd, bdir / "configure.log")
            if proc.returncode != 0:
                shutil.rmtree(bdir / "CMakeFiles", ignore_errors=True)
                (bdir / "CMakeCache.txt").unlink(missing_ok=True)
                raise BuildError("configuring the reference server failed:\n" + tail(proc.stdout, 25))
        proc = _run(["cmake", "--build", str(bdir)], bdir / "build.log")
        if proc.returncode != 0:
            raise BuildError(
                f"compiling the reference server failed (full log: {bdir / 'build.log'}):\n" + tail(proc.stdout, 25)
            )
    binary = bdir / "servers" / "refserver"
    if not binary.is_file():
        raise BuildError(f"the build finished but {binary} is missing")
    return binary


def mutants_library(binary):
    """The mutant MHDs (servers/mutants.c), built next to the server."""
    return binary.parent / "libconformance_mutants.so"


INTEROP_RULE = "U-WS-6"
# Its own rules (IDs); seen only with --sanitize; the real clients that must
# each catch it: None (not a U-WS-6 mutant), "" every one, or a feature of
# harness/interop/base.py's Client that those clients have ("early"); what
# it does wrong (its description in mutants.c's table).
Mutant = namedtuple("Mutant", "rules sanitize clients breaks")


def mutant_names(binary, library):
    """{name: Mutant} of the mutants the library knows, asked of the
    library itself ("NAME RULE[,RULE[:FEATURE]] [sanitize]", a tab and
    what it breaks, per line)."""
    env = dict(os.environ, LD_PRELOAD=str(library), CONFORMANCE_MUTANT="list")
    out = subprocess.run([str(binary), "--version"], env=env, capture_output=True, text=True, timeout=30)
    names = {}
    for line in out.stdout.splitlines():
        head, _, breaks = line.partition("\t")
        words = head.split()
        if len(words) >= 2:
            rules = [r.partition(":") for r in words[1].split(",")]
            clients = next((feature for rule, _, feature in rules if rule == INTEROP_RULE), None)
            names[words[0]] = Mutant([rule for rule, _, _ in rules], "sanitize" in words[2:], clients,
                                     breaks.strip())
    if out.returncode != 0 or not names:
        raise RuntimeError(f"{library} did not list its mutants (exit {out.returncode}): {out.stderr.strip()}")
    return names


def faults_library(binary):
    """The system's faults (servers/faults.c), built next to the server."""
    return binary.parent / "libconformance_faults.so"


def cached_value(prefix, name, sanitize=False):
    """A value from the build's CMake cache, e.g. MHD_PREFIX."""
    cache = build_dir(prefix, sanitize) / "CMakeCache.txt"
    for line in cache.read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    return None


def server_version(binary, env=None):
    """What the built server reports of its MHD (refserver --version)."""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **env) if env else None)
    if proc.returncode != 0:
        raise BuildError(f"{binary} --version failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)
