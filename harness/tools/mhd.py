"""./conformance mhd: released MHD versions, built from Debian's source
packages into cached install prefixes under build/mhd/.

Debian's archive carries one MHD per suite (bookworm 0.9.75, trixie 1.0.1,
sid 1.0.10, ...). The source packages are fetched with a private APT
configuration (its own sources list, package lists and cache under
build/mhd/apt/), so the system's APT setup is never read or changed. MHD's
source stays under build/ and is never part of the repository.

Standard library only: runs before pytest is installed."""

import argparse
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import sys
import time

from . import build, deps

MHD_ROOT = build.BUILD_ROOT / "mhd"
APT_DIR = MHD_ROOT / "apt"
SUITES = ("bookworm", "trixie", "sid")
MIRROR_ENV = "CONFORMANCE_DEBIAN_MIRROR"
APT_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")
PACKAGE = "libmicrohttpd"
# What fetching and building MHD needs (dpkg-source unpacks the package;
# the autotools regenerate the build system after Debian's patches).
BUILD_PACKAGES = ("dpkg-dev", "autoconf", "automake", "libtool", "autopoint", "make", "gcc",
                  "pkg-config", "libgnutls28-dev")
LISTS_MAX_AGE = 24 * 3600  # seconds before the package lists are fetched again
MARKER = ".conformance-mhd.json"  # in a finished prefix: what was built, how


class MhdError(Exception):
    """One message naming the cause and the fix; exit status `code`."""

    def __init__(self, message, code=3):
        super().__init__(message)
        self.code = code


def say(text):
    print(f"conformance mhd: {text}", file=sys.stderr, flush=True)


# -- the private APT configuration -------------------------------------------

def apt_options():
    return ["-o", f"Dir::Etc::SourceList={APT_DIR / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={APT_DIR / 'sources.list.d'}",
            "-o", f"Dir::State::Lists={APT_DIR / 'lists'}",
            "-o", f"Dir::Cache={APT_DIR / 'cache'}",
            # Downloads go to folders of this user; no switch to _apt.
            "-o", f"APT::Sandbox::User={_user()}",
            "-q"]


def _user():
    return pwd.getpwuid(os.geteuid()).pw_name


def system_mirrors(paths=APT_SOURCES):
    """The Debian archive URIs of the system's own APT sources, in order:
    one-line (sources.list, *.list) and deb822 (*.sources) files; security
    and other non-archive sources left out."""
    files = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.list")) + sorted(path.glob("*.sources"))
        elif path.is_file():
            files.append(path)
    uris = []
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and "security" not in fields.get("Suites", ""):
                    uris += fields.get("URIs", "").split()
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] in ("deb", "deb-src") and "security" not in words[2]:
                    uris.append(words[1])
    return [u.rstrip("/") for u in dict.fromkeys(uris) if u.startswith(("http://", "https://", "file:"))
            and "security" not in u]


def mirror():
    """The Debian mirror to fetch source packages from: CONFORMANCE_DEBIAN_MIRROR,
    else the first archive of the system's own APT sources."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV].rstrip("/")
    found = system_mirrors()
    if not found:
        raise MhdError(f"no Debian archive in the system's APT sources ({', '.join(APT_SOURCES)}); set "
                       f"{MIRROR_ENV} to a Debian mirror's URL", 2)
    return found[0]


def _apt_setup():
    for d in ("sources.list.d", "lists/partial", "cache/archives/partial"):
        (APT_DIR / d).mkdir(parents=True, exist_ok=True)
    text = "".join(f"deb-src {mirror()} {suite} main\n" for suite in SUITES)
    path = APT_DIR / "sources.list"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        # Other sources: the lists fetched before no longer apply.
        (APT_DIR / "updated").unlink(missing_ok=True)


def _run(cmd, cwd=None, log=None):
    """Runs `cmd`; output to `log` (a path) or captured. Returns the process."""
    try:
        if log is None:
            return subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        with open(log, "w") as f:
            return subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                  text=True)
    except FileNotFoundError:
        raise MhdError(f"{cmd[0]} is not installed: apt-get install {' '.join(BUILD_PACKAGES)}", 2) from None


def _tail(text, lines=15):
    return "\n".join(text.rstrip().splitlines()[-lines:])


def update_lists(force=False):
    """Fetches the source package lists of SUITES, unless fetched recently."""
    _apt_setup()
    stamp = APT_DIR / "updated"
    if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE:
        return
    say(f"fetching the source package lists of {', '.join(SUITES)} from {mirror()}")
    proc = _run(["apt-get", *apt_options(), "update"])
    if proc.returncode != 0 or re.search(r"^(E:|Err:)", proc.stdout + proc.stderr, re.M):
        raise MhdError(f"cannot fetch Debian's package lists from {mirror()} (no network to the archive? "
                       f"set {MIRROR_ENV} to a reachable mirror):\n" + _tail(proc.stdout + proc.stderr))
    stamp.touch()


def upstream(debian_version):
    """'1.0.10-1' -> '1.0.10' (no epoch, no Debian revision)."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def available():
    """[(upstream version, Debian version, suite)] in the archive, oldest first."""
    update_lists()
    proc = _run(["apt-cache", *apt_options(), "madison", PACKAGE])
    found = {}
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2].endswith("Sources"):
            suite = parts[2].split()[-2].split("/")[0]
            found.setdefault(parts[1], suite)
    if not found:
        raise MhdError(f"no {PACKAGE} source package in the lists of {', '.join(SUITES)} "
                       f"({mirror()}); try again with --refresh:\n" + _tail(proc.stdout + proc.stderr))
    return sorted(((upstream(d), d, s) for d, s in found.items()), key=lambda t: _key(t[1]))


def _key(version):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.\-+~:]", version)]


def resolve(version):
    """The (upstream, Debian version, suite) that `version` names: an upstream
    version (1.0.10) or a Debian one (1.0.10-1)."""
    choices = available()
    for entry in reversed(choices):  # the newest Debian revision of an upstream version
        if version in (entry[0], entry[1]):
            return entry
    raise MhdError(f"MHD {version} is not in Debian's archive ({', '.join(SUITES)}); available: "
                   + ", ".join(sorted({c[0] for c in choices}, key=_key)), 2)


# -- fetching and building ---------------------------------------------------

def variant_name(sanitize=False, asserts=False):
    """The suffix of a build variant's prefix: -sanitize, -asserts, both."""
    return ("-sanitize" if sanitize else "") + ("-asserts" if asserts else "")


def prefix_for(version, sanitize=False, asserts=False):
    return MHD_ROOT / (version + variant_name(sanitize, asserts))


def built():
    """{prefix: marker data} of every finished build."""
    out = {}
    for marker in sorted(MHD_ROOT.glob(f"*/{MARKER}")):
        try:
            out[marker.parent] = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
    return out


def fetch_source(debian_version):
    """The unpacked (Debian-patched) source tree of `debian_version`."""
    src_root = MHD_ROOT / "src"
    tree = src_root / f"{PACKAGE}-{debian_version}"
    if (tree / "configure.ac").exists():
        return tree
    scratch = src_root / f".fetch-{debian_version}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    say(f"fetching the source package {PACKAGE} {debian_version}")
    proc = _run(["apt-get", *apt_options(), "source", f"{PACKAGE}={debian_version}"], cwd=scratch)
    trees = [p for p in scratch.iterdir() if p.is_dir()]
    if proc.returncode != 0 or len(trees) != 1:
        raise MhdError(f"'apt-get source {PACKAGE}={debian_version}' failed:\n" + _tail(proc.stdout + proc.stderr))
    shutil.rmtree(tree, ignore_errors=True)
    trees[0].rename(tree)
    shutil.rmtree(scratch, ignore_errors=True)
    return tree


def configure_args(prefix, sanitize, asserts=False):
    args = [f"--prefix={prefix}", "--enable-https", "--with-gnutls", "--disable-static", "--disable-doc",
            "--disable-examples", "--disable-dependency-tracking"]
    if asserts:
        # MHD's own checks as assertions (mhd_assert): a build that aborts
        # where a release build carries on.
        args.append("--enable-asserts")
    flags = "-O1 -g"
    if sanitize:
        flags += " -fsanitize=address,undefined -fno-omit-frame-pointer"
        args.append("LDFLAGS=-fsanitize=address,undefined")
    return args + [f"CFLAGS={flags}"]


def build_version(version, sanitize=False, rebuild=False, allow_install=True, asserts=False):
    """Builds MHD `version` into its cached prefix (unless already there) and
    returns the prefix."""
    up, debian_version, suite = resolve(version)
    prefix = prefix_for(up, sanitize, asserts)
    marker = prefix / MARKER
    if marker.exists() and not rebuild:
        say(f"MHD {up} already built ({debian_version}); --rebuild builds it again")
        return prefix
    deps.ensure_packages(list(BUILD_PACKAGES), "to build MHD from source", allow_install)
    tree = fetch_source(debian_version)
    work = MHD_ROOT / "work" / prefix.name
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(prefix, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    # A copy that keeps the time stamps, so make does not want to
    # regenerate what autoreconf just made.
    shutil.copytree(tree, work, symlinks=True)
    jobs = str(os.cpu_count() or 2)
    steps = [("autoreconf", ["autoreconf", "-fi"]),
             ("configure", ["./configure", *configure_args(prefix, sanitize, asserts)]),
             ("make", ["make", f"-j{jobs}"]),
             ("make install", ["make", "install"])]
    started = time.monotonic()
    for name, cmd in steps:
        say(f"MHD {up}: {name}")
        log = work / f"{name.replace(' ', '-')}.log"
        proc = _run(cmd, cwd=work, log=log)
        if proc.returncode != 0:
            raise MhdError(f"building MHD {up}: '{' '.join(cmd[:2])}' failed (exit status {proc.returncode}); "
                           f"full log: {log}\n" + _tail(log.read_text()))
    build.check_prefix(str(prefix))
    marker.write_text(json.dumps({"version": up, "debian_version": debian_version, "suite": suite,
                                  "sanitize": sanitize, "asserts": asserts,
                                  "configure": configure_args(prefix, sanitize, asserts),
                                  "seconds": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return prefix


# -- the command line --------------------------------------------------------

def cmd_list(args):
    have = built()
    print(f"{'version':<10} {'debian':<14} {'suite':<10} built prefix")
    rows = available() if not args.built else []
    seen = set()
    for up, debian_version, suite in rows:
        prefixes = [str(p) for p, m in have.items() if m.get("debian_version") == debian_version]
        seen.update(prefixes)
        print(f"{up:<10} {debian_version:<14} {suite:<10} {', '.join(prefixes) or '-'}")
    for p, m in have.items():
        if str(p) not in seen:
            print(f"{m.get('version', '?'):<10} {m.get('debian_version', '?'):<14} {m.get('suite', '?'):<10} {p}")
    return 0


def cmd_build(args):
    prefix = build_version(args.version, sanitize=args.sanitize, rebuild=args.rebuild,
                           allow_install=not args.no_install, asserts=args.asserts)
    print(prefix)
    return 0


def make_parser():
    p = argparse.ArgumentParser(
        prog="conformance mhd",
        description="Builds released MHD versions from Debian's source packages (suites "
                    f"{', '.join(SUITES)}) into cached prefixes under {MHD_ROOT}, for --mhd. The system's "
                    "APT configuration is not touched: a private one lives in build/mhd/apt/.",
        epilog="example:\n  ./conformance --mhd \"$(./conformance mhd build 1.0.10 | tail -n 1)\"\n\n"
               "Environment: CONFORMANCE_DEBIAN_MIRROR (default: the first Debian archive of the\n"
               "system's own APT sources, /etc/apt/sources.list and sources.list.d/).\n"
               "Exit status: 0 done; 2 unknown version or missing packages; 3 fetch or build failed.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = sub.add_parser("list", help="versions in Debian's archive, and which are built")
    ls.add_argument("--built", action="store_true", help="only the built ones (no network)")
    ls.add_argument("--refresh", action="store_true", help="fetch the package lists again first")
    ls.set_defaults(run=cmd_list)
    b = sub.add_parser("build", help="build VERSION (e.g. 1.0.10) unless built; prints its prefix last")
    b.add_argument("version", metavar="VERSION", help="upstream version (1.0.10) or Debian version (1.0.10-1)")
    b.add_argument("--sanitize", action="store_true",
                   help="with AddressSanitizer and UBSan (its own prefix, VERSION-sanitize); run the "
                        "suite on it with --sanitize")
    b.add_argument("--asserts", action="store_true",
                   help="with MHD's assertions enabled (configure --enable-asserts; its own prefix, "
                        "VERSION-asserts): an abort where a release build carries on is reported as the crash it is")
    b.add_argument("--rebuild", action="store_true", help="build again even if built")
    b.add_argument("--refresh", action="store_true", help="fetch the package lists again first")
    b.add_argument("--no-install", action="store_true", help="never run apt-get install")
    b.set_defaults(run=cmd_build)
    return p


def main(argv):
    args = make_parser().parse_args(argv)
    try:
        if getattr(args, "refresh", False):
            update_lists(force=True)
        return args.run(args)
    except (MhdError, deps.DepsError, build.BuildError) as e:
        say(str(e))
        return getattr(e, "code", 3)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
