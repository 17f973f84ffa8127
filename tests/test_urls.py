"""harness/urls.py: URLs built from the reference server's one table of
query keys (servers/querykeys.c), which refuse a key the path does not
accept; that the cases build theirs so; and the URLs still written by
hand elsewhere, checked against the same table."""

import ast
import pathlib
import re

import pytest

from harness import urls
from harness.tools import build

ROOT = pathlib.Path(__file__).resolve().parent.parent

KEYS = (  # the shape `refserver --keys` prints, a few of its rows
    {"key": "at", "paths": ("*",), "value": "headers", "script_param": False, "about": ""},
    {"key": "then", "paths": ("/upgrade",), "value": "S", "script_param": False, "about": ""},
    {"key": "proto", "paths": ("/upgrade",), "value": "V", "script_param": False, "about": ""},
    {"key": "twice", "paths": ("/upgrade",), "value": "1", "script_param": False, "about": ""},
    {"key": "idle", "paths": ("/upgrade", "/ws"), "value": "MS", "script_param": True, "about": ""},
)


def test_url_in_the_order_given_with_flags_and_encoding():
    assert urls.scenario_url(KEYS, "/upgrade", then="echo", twice=True, idle=250) == "/upgrade?then=echo&twice=1&idle=250"
    assert urls.scenario_url(KEYS, "/upgrade", then="close", twice=False, idle=None) == "/upgrade?then=close"
    assert urls.scenario_url(KEYS, "/upgrade", proto="a b/1,c") == "/upgrade?proto=a%20b%2F1%2Cc"
    assert urls.scenario_url(KEYS, "/ws", idle=5, at="headers", **{"x-odd": ""}) == "/ws?idle=5&at=headers&x-odd="
    assert urls.scenario_url(KEYS, "/hello") == "/hello"


def test_url_refuses_a_key_its_path_does_not_accept():
    with pytest.raises(urls.UnknownKey, match=r"/ws accepts no query key then: it accepts at idle"):
        urls.scenario_url(KEYS, "/ws", then="echo")
    with pytest.raises(urls.UnknownKey, match="no query key thne"):
        urls.scenario_url(KEYS, "/upgrade", thne="echo")


@pytest.fixture(scope="module")
def server_keys():
    try:
        binary = build.ensure_server()
    except build.BuildError as e:
        pytest.skip(f"the reference server cannot be built here, so its key table cannot be read: {e}")
    return urls.query_keys(str(binary))


def test_url_from_the_servers_own_table(server_keys):
    assert {k["key"] for k in server_keys} >= {"then", "until", "idle", "nofallback", "of", "sent", "at"}
    assert all(k["about"] and k["value"] for k in server_keys), "every key has its description and value form"
    # /ws and /plain-101 answer a refusal as /upgrade does: nofallback= is theirs too.
    assert urls.scenario_url(server_keys, "/ws", nofallback=True, idle=10) == "/ws?nofallback=1&idle=10"
    assert urls.scenario_url(server_keys, "/plain-101", nofallback=True) == "/plain-101?nofallback=1"
    with pytest.raises(urls.UnknownKey):
        urls.scenario_url(server_keys, "/hello", n=1)


# -- the URLs still written by hand ------------------------------------
PATHS = ("/upgrade", "/plain-101", "/null-handler", "/hello", "/stats", "/release", "/ws")
# The cases and their shared steps build every scenario URL with
# RefServer.url. Left by hand on purpose there: the query tails of U-CB-7's
# VIEWS (cases/test_cb.py), a test of MHD's parsing (an argument without
# "=", a long URL), "x-" keys only, which the pattern below does not see.
CASE_FILES = ("cases/*.py", "harness/checks.py")


def docstrings(tree):
    """The ids of the docstring nodes of `tree`: prose about URLs (e.g.
    "GET /release?of=RID"), not URLs a request uses."""
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and ast.get_docstring(node, clean=False) is not None}


def hand_built_queries(sources, prose=True):
    """[(file, path, [keys])] of every string in `sources` ({name: text})
    that names a scenario path with a query ("/upgrade?then=...", an
    f-string's parts joined); docstrings too if `prose`."""
    out = []
    for name, text in sources.items():
        tree = ast.parse(text)
        skip = set() if prose else docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.JoinedStr):
                skip.update(id(v) for v in node.values)  # its parts: seen here, whole
                s = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                s = node.value
            else:
                continue
            for path in PATHS:
                for m in re.finditer(re.escape(path) + r"\?(\S*)", s):
                    out.append((name, path, re.findall(r"(?:^|&)([A-Za-z_][\w-]*)=", m.group(1))))
    return out


def sources(*patterns):
    files = sorted({p for pattern in patterns for p in ROOT.glob(pattern)})
    return {str(p.relative_to(ROOT)): p.read_text() for p in files}


def case_sources():
    return sources("cases/**/*.py", "harness/**/*.py")


def misspelt(queries, keys):
    return sorted({(name, path, k) for name, path, found in queries for k in found
                   if k not in urls.accepted(keys, path) and not k.startswith("x-")})


def test_cases_build_no_url_by_hand():
    assert hand_built_queries(sources(*CASE_FILES), prose=False) == [], (
        'build it with server.url(path, key=value, ...) (harness/server.py), or say why it is written by hand')


def test_hand_built_urls_use_only_keys_their_path_accepts(server_keys):
    """The rest of the harness, and the prose, as the cases'
    docstrings: still written by hand, checked against the table."""
    assert misspelt(hand_built_queries(case_sources()), server_keys) == []


def test_the_url_checks_see_a_hand_built_url_and_a_misspelt_key(server_keys):
    sources = case_sources()
    sources["cases/test_resp.py"] += '\nURL = f"/upgrade?then=close&untl={1}"\n'
    assert misspelt(hand_built_queries(sources), server_keys) == [("cases/test_resp.py", "/upgrade", "untl")]
    assert hand_built_queries({"cases/test_resp.py": sources["cases/test_resp.py"]}, prose=False) == [
        ("cases/test_resp.py", "/upgrade", ["then", "untl"])]
