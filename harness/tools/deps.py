"""The Debian packages the suite needs, and installing the missing ones (as
root) before the run. Standard library only: this runs before pytest and
the other Python dependencies are installed."""

import os
import shutil
import subprocess
import sys

from .failure import Fail, say

# The Python modules the run imports, each with the Debian package that
# provides it: the one list (./conformance's launcher reads it too).
PYTHON_MODULES = {
    "pytest": "python3-pytest",
    "h11": "python3-h11",
    "xdist": "python3-pytest-xdist",
    "pytest_timeout": "python3-pytest-timeout",
    "trustme": "python3-trustme",  # the test CA of every HTTPS cell
    "websockets": "python3-websockets",
}
MODULES = tuple(PYTHON_MODULES)
IMPORT_CHECK = "import " + ", ".join(MODULES)

BASE_PACKAGES = ("cmake", "gcc", "make", "pkg-config", "libgnutls28-dev", "libwslay-dev",
                 *PYTHON_MODULES.values())
# Only for --interop (U-WS-6): the real clients (node-ws brings Debian's
# nodejs) and iproute2's ss, which reads their connections' byte counters.
INTEROP_PACKAGES = ("chromium", "node-ws", "python3-aiohttp", "python3-wsproto", "iproute2")
# Only needed to test the system's MHD; --mhd PREFIX brings its own.
SYSTEM_MHD_PACKAGE = "libmicrohttpd-dev"

DEBIAN_PYTHON = "/usr/bin/python3"


class DepsError(Fail):
    """A dependency is missing and cannot be installed here; the message
    names the fix. Exit status: `code`, 2 unless said."""

    def __init__(self, message, code=2):
        super().__init__(message, code)


def required(prefix=None, interop=False):
    """The packages a run against `prefix` (None: the system's MHD) needs,
    with the real clients' for --interop."""
    pkgs = list(BASE_PACKAGES) + (list(INTEROP_PACKAGES) if interop else [])
    if not prefix:
        pkgs.append(SYSTEM_MHD_PACKAGE)
    return pkgs


def have_dpkg():
    return shutil.which("dpkg-query") is not None


def installed(pkg):
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def missing(pkgs):
    """The packages of `pkgs` that dpkg does not list as installed."""
    return [p for p in pkgs if not installed(p)]


def imports_work(python=None):
    """True if `python` (default: this interpreter) can import MODULES."""
    proc = subprocess.run([python or sys.executable, "-c", IMPORT_CHECK],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def install_command(pkgs, sudo=True):
    return ("sudo " if sudo else "") + "apt-get install -y " + " ".join(pkgs)


def _apt(args):
    """Runs apt-get with its output on stderr; returns its exit status."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        return subprocess.run(["apt-get", *args], stdin=subprocess.DEVNULL, stdout=sys.stderr,
                              stderr=sys.stderr, env=env).returncode
    except FileNotFoundError:
        raise DepsError("apt-get is not installed here; install these packages by other means: "
                        + " ".join(args[-1:])) from None


def install(pkgs, why):
    """apt-get update, then apt-get install `pkgs` (as root)."""
    sys.stdout.flush()
    say(f"installing Debian packages {why}: {' '.join(pkgs)}")
    rc = _apt(["update"])
    if rc != 0:
        raise DepsError(f"'apt-get update' failed (exit status {rc}, output above): fix the APT "
                        f"sources, then run again or install by hand: {install_command(pkgs, sudo=False)}")
    rc = _apt(["install", "-y", "--no-install-recommends", *pkgs])
    if rc != 0:
        raise DepsError(f"'apt-get install' failed (exit status {rc}, output above): fix the cause, "
                        f"then run again or install by hand: {install_command(pkgs, sudo=False)}")
    still = missing(pkgs)
    if still:
        raise DepsError("apt-get finished but these packages are still not installed: "
                        f"{' '.join(still)}; install them by hand: {install_command(still, sudo=False)}")
    say("Debian packages installed")


def ensure(prefix=None, allow_install=True, interop=False):
    """Makes sure the packages a run against `prefix` needs are there:
    installs the missing ones when root and `allow_install`, else raises
    DepsError naming the missing packages and the command to install them.
    Returns the packages it installed."""
    pkgs = required(prefix, interop)
    if not have_dpkg():
        if imports_work():
            say("dpkg-query not found (not a Debian system?): cannot check the system packages "
                 f"({' '.join(pkgs)}); the Python modules import, so going on")
            return []
        raise DepsError(f"dpkg-query not found (not a Debian system?), and {sys.executable} cannot "
                        f"import {', '.join(MODULES)}: install them for it (Debian's packages: "
                        f"{' '.join(PYTHON_MODULES.values())}; or set CONFORMANCE_PYTHON to a Python that has them), "
                        "plus cmake, a C compiler, pkg-config, GnuTLS, wslay and libmicrohttpd headers")
    why = "the suite needs" + ("" if prefix else
                               f" ({SYSTEM_MHD_PACKAGE}: no --mhd given, so the system's MHD is tested)")
    return ensure_packages(pkgs, why, allow_install)


def ensure_packages(pkgs, why, allow_install=True):
    """Installs those of `pkgs` that are missing (as root, if allowed), or
    raises DepsError naming them and the command that installs them."""
    need = missing(pkgs)
    if not need:
        return []
    if not allow_install or os.geteuid() != 0:
        reason = "--no-install given" if not allow_install else "not root, so not installing them"
        raise DepsError(f"missing Debian packages: {' '.join(need)} ({reason})\n"
                        f"conformance: install them with: {install_command(need)}")
    install(need, why)
    return need
