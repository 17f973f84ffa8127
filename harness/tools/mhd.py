"""./conformance mhd: MHD built into cached install prefixes under
build/mhd/: released versions from Debian's source packages, or any source
tree (a git checkout at a revision, a release tarball), each in variants
(--sanitize, --asserts, --coverage).

Debian's archive carries one MHD per suite (bookworm 0.9.75, trixie 1.0.1,
sid 1.0.10, ...). The source packages are fetched with a private APT
configuration (its own sources list, package lists and cache under
build/mhd/apt/), so the system's APT setup is never read or changed. MHD's
source stays under build/ and is never part of the repository.

Standard library only: runs before pytest is installed."""

import argparse
import functools
import hashlib
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tarfile
import time

from .. import options
from . import build, deps, failure
from .failure import Fail, tail

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
TAIL_LINES = 15  # of apt-get's or the build's output, in a message
MARKER = ".conformance-mhd.json"  # in a finished prefix: what was built, how


class MhdError(Fail):
    """One message naming the cause and the fix; exit status `code`, 3
    unless said."""

    def __init__(self, message, code=3):
        super().__init__(message, code)


say = functools.partial(failure.say, command="mhd")


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
                       f"set {MIRROR_ENV} to a reachable mirror):\n" + tail(proc.stdout + proc.stderr, TAIL_LINES))
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
                       f"({mirror()}); try again with --refresh:\n" + tail(proc.stdout + proc.stderr, TAIL_LINES))
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

def variant_name(sanitize=False, asserts=False, coverage=False):
    """The suffix of a build variant's prefix: -sanitize, -asserts, -coverage,
    or several of them."""
    return ("-sanitize" if sanitize else "") + ("-asserts" if asserts else "") + ("-coverage" if coverage else "")


def prefix_for(version, sanitize=False, asserts=False, coverage=False):
    return MHD_ROOT / (version + variant_name(sanitize, asserts, coverage))


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
        raise MhdError(f"'apt-get source {PACKAGE}={debian_version}' failed:\n" + tail(proc.stdout + proc.stderr, TAIL_LINES))
    shutil.rmtree(tree, ignore_errors=True)
    trees[0].rename(tree)
    shutil.rmtree(scratch, ignore_errors=True)
    return tree


def configure_args(prefix, sanitize, asserts=False, coverage=False):
    args = [f"--prefix={prefix}", "--enable-https", "--with-gnutls", "--disable-static", "--disable-doc",
            "--disable-examples", "--disable-dependency-tracking"]
    if asserts:
        # MHD's own checks as assertions (mhd_assert): a build that aborts
        # where a release build carries on.
        args.append("--enable-asserts")
    flags, ldflags = "-O1 -g", []
    if sanitize:
        flags += " -fsanitize=address,undefined -fno-omit-frame-pointer"
        ldflags.append("-fsanitize=address,undefined")
    if coverage:
        # gcov's counters, without optimisation: a line run is a line counted.
        flags = flags.replace("-O1", "-O0") + " --coverage"
        ldflags.append("--coverage")
    if ldflags:
        args.append("LDFLAGS=" + " ".join(ldflags))
    return args + [f"CFLAGS={flags}"]


def build_tree(tree, prefix, meta, variant, rebuild=False, allow_install=True):
    """Builds the MHD source `tree` into `prefix` (unless a finished build is
    there) and returns the prefix. `variant`: {sanitize, asserts, coverage};
    `meta`: what the marker says of the source. A tree without `configure`
    (a git checkout), or one whose Debian patches changed the build files,
    is bootstrapped with autoreconf. A coverage build keeps its build tree
    (gcov's notes and counters live there; the marker names it); a failed
    build keeps its logs."""
    marker = prefix / MARKER
    name = meta.get("version") or prefix.name
    if marker.exists() and not rebuild:
        say(f"MHD {name} already built in {prefix}; --rebuild builds it again")
        return prefix
    deps.ensure_packages(list(BUILD_PACKAGES), "to build MHD from source", allow_install)
    work = MHD_ROOT / "work" / prefix.name
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(prefix, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    # A copy that keeps the time stamps, so make does not want to
    # regenerate what autoreconf just made.
    shutil.copytree(tree, work, symlinks=True)
    jobs = str(os.cpu_count() or 2)
    args = configure_args(prefix, **variant)
    steps = [("configure", ["./configure", *args]), ("make", ["make", f"-j{jobs}"]),
             ("make install", ["make", "install"])]
    if meta.get("bootstrap", True) or not (work / "configure").exists():
        steps.insert(0, ("autoreconf", ["autoreconf", "-fi"]))
    started = time.monotonic()
    for step, cmd in steps:
        say(f"MHD {name}: {step}")
        log = work / f"{step.replace(' ', '-')}.log"
        proc = _run(cmd, cwd=work, log=log)
        if proc.returncode != 0:
            raise MhdError(f"building MHD {name}: '{' '.join(cmd[:2])}' failed (exit status {proc.returncode}); "
                           f"the build tree and its logs are kept: {log}\n" + tail(log.read_text(), TAIL_LINES))
    build.check_prefix(str(prefix))
    info = dict(meta, **variant, configure=args, seconds=round(time.monotonic() - started, 1))
    if variant.get("coverage"):
        info["build_tree"] = str(work)
    marker.write_text(json.dumps(info, indent=2) + "\n")
    if not variant.get("coverage"):
        shutil.rmtree(work, ignore_errors=True)
    return prefix


def build_version(version, sanitize=False, rebuild=False, allow_install=True, asserts=False, coverage=False):
    """Builds the released MHD `version` from Debian's source package into
    its cached prefix (unless already there) and returns the prefix."""
    up, debian_version, suite = resolve(version)
    prefix = prefix_for(up, sanitize, asserts, coverage)
    if (prefix / MARKER).exists() and not rebuild:
        say(f"MHD {up} already built ({debian_version}); --rebuild builds it again")
        return prefix
    tree = fetch_source(debian_version)
    # Debian's patches may touch the build files: always bootstrap.
    meta = {"version": up, "debian_version": debian_version, "suite": suite, "source": "debian", "bootstrap": True}
    return build_tree(tree, prefix, meta, dict(sanitize=sanitize, asserts=asserts, coverage=coverage),
                      rebuild=rebuild, allow_install=allow_install)


def _git(repo, *args):
    proc = _run(["git", "-C", str(repo), *args])
    if proc.returncode != 0:
        raise MhdError(f"git -C {repo} {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}", 2)
    return proc.stdout.strip()


def git_commit(repo, rev="HEAD"):
    """The full commit id that `rev` names in the git repository `repo`."""
    if not (pathlib.Path(repo) / ".git").exists() and _run(["git", "-C", str(repo), "rev-parse", "--git-dir"]).returncode:
        raise MhdError(f"--git {repo}: not a git repository", 2)
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def source_of_git(repo, rev="HEAD"):
    """(tree, identity) of commit `rev` of `repo`: the commit's files,
    exported (git archive) into build/mhd/src/git-<commit>; the user's
    checkout, its index and its HEAD are left as they are."""
    commit = git_commit(repo, rev)
    tree = MHD_ROOT / "src" / f"git-{commit}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = _run(["git", "-C", str(repo), "archive", "--format=tar", "-o", str(tree / ".archive.tar"), commit])
        if archive.returncode != 0:
            raise MhdError(f"git archive {commit} failed: {archive.stderr.strip()}", 3)
        with tarfile.open(tree / ".archive.tar") as tar:
            tar.extractall(tree)
        (tree / ".archive.tar").unlink()
        (tree / ".complete").touch()
    subject = _git(repo, "log", "-1", "--format=%s", commit)
    return tree, {"version": f"git-{commit[:12]}", "source": "git", "repository": str(pathlib.Path(repo).resolve()),
                  "commit": commit, "subject": subject, "bootstrap": False}


def source_of_tarball(path):
    """(tree, identity) of a release tarball, unpacked into
    build/mhd/src/tar-<sha256>, keyed by the file's digest."""
    path = pathlib.Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise MhdError(f"--tarball {path}: {e.strerror or e}", 2) from None
    root = MHD_ROOT / "src" / f"tar-{digest}"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            with tarfile.open(path) as tar:
                tar.extractall(root)
        except (tarfile.TarError, OSError) as e:
            raise MhdError(f"--tarball {path}: cannot unpack it ({e})", 2) from None
        (root / ".complete").touch()
    tops = [p for p in root.iterdir() if p.is_dir()]
    tree = tops[0] if len(tops) == 1 and not (root / "configure.ac").exists() else root
    if not (tree / "configure.ac").exists():
        raise MhdError(f"--tarball {path}: no MHD source tree in it (no configure.ac)", 2)
    return tree, {"version": f"tar-{digest[:12]}", "source": "tarball", "tarball": str(path.resolve()),
                  "sha256": digest, "name": tree.name, "bootstrap": False}


def build_source(tree, meta, sanitize=False, asserts=False, coverage=False, rebuild=False, allow_install=True):
    """A source tree (from source_of_git or source_of_tarball) built into the
    prefix its identity and variant name: build/mhd/<git-COMMIT|tar-SHA><variant>."""
    prefix = prefix_for(meta["version"], sanitize, asserts, coverage)
    return build_tree(tree, prefix, meta, dict(sanitize=sanitize, asserts=asserts, coverage=coverage),
                      rebuild=rebuild, allow_install=allow_install)


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
    variant = dict(sanitize=args.sanitize, asserts=args.asserts, coverage=args.coverage, rebuild=args.rebuild,
                   allow_install=not args.no_install)
    sources = [bool(args.version), bool(args.git), bool(args.tarball)]
    if sum(sources) != 1:
        raise MhdError("give one source: VERSION, --git DIR [--rev REV], or --tarball FILE", 2)
    if args.rev and not args.git:
        raise MhdError("--rev goes with --git", 2)
    if args.version:
        prefix = build_version(args.version, **variant)
    elif args.git:
        prefix = build_source(*source_of_git(args.git, args.rev or "HEAD"), **variant)
    else:
        prefix = build_source(*source_of_tarball(args.tarball), **variant)
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
    b = sub.add_parser("build", help="build VERSION (e.g. 1.0.10), a git revision or a tarball unless built; "
                                     "prints its prefix last")
    b.add_argument("version", metavar="VERSION", nargs="?",
                   help="upstream version (1.0.10) or Debian version (1.0.10-1), from Debian's source package")
    b.add_argument("--git", metavar="DIR", help="an MHD git repository: build --rev of it (prefix git-COMMIT; "
                                               "bootstrapped when the commit has no configure); the checkout is "
                                               "not touched (git archive)")
    b.add_argument("--rev", metavar="REV", help="with --git: the revision (default HEAD)")
    b.add_argument("--tarball", metavar="FILE", help="a release tarball (prefix tar-SHA256)")
    b.add_argument("--sanitize", action="store_true",
                   help="with AddressSanitizer and UBSan (its own prefix, VERSION-sanitize); run the "
                        "suite on it with --sanitize")
    b.add_argument("--asserts", action="store_true",
                   help="with MHD's assertions enabled (configure --enable-asserts; its own prefix, "
                        "VERSION-asserts): an abort where a release build carries on is reported as the crash it is")
    b.add_argument("--coverage", action="store_true",
                   help="with gcov's counters (-O0 --coverage; prefix VERSION-coverage); the build tree is kept "
                        "for ./conformance coverage")
    b.add_argument("--rebuild", action="store_true", help="build again even if built")
    b.add_argument("--refresh", action="store_true", help="fetch the package lists again first")
    options.add_no_install(b.add_argument)
    b.set_defaults(run=cmd_build)
    return p


def main(argv):
    args = make_parser().parse_args(argv)
    try:
        if getattr(args, "refresh", False):
            update_lists(force=True)
        return args.run(args)
    except (Fail, build.BuildError) as e:  # MhdError and deps.DepsError are Fail
        say(str(e))
        return getattr(e, "code", 3)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
