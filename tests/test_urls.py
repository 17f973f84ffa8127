"""harness/urls.py: URLs built from the reference server's one table of
query keys (servers/querykeys.c), which refuse a key the path does not
accept; and the URLs the cases still write by hand, checked against the
same table."""

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


# -- the URLs the cases write by hand ------------------------------------
PATHS = ("/upgrade", "/plain-101", "/null-handler", "/hello", "/stats", "/release", "/ws")


def hand_built_queries(sources):
    """[(file, path, [keys])] of every string in `sources` ({name: text})
    that names a scenario path with a query ("/upgrade?then=...", an
    f-string's parts joined) or is a query fragment of /upgrade (one that
    starts with "then=", as ECHO_ONCE)."""
    out = []
    for name, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.JoinedStr):
                s = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                s = node.value
            else:
                continue
            for path in PATHS:
                for m in re.finditer(re.escape(path) + r"\?(\S*)", s):
                    out.append((name, path, re.findall(r"(?:^|&)([A-Za-z_][\w-]*)=", m.group(1))))
            if s.startswith("then="):
                out.append((name, "/upgrade", re.findall(r"(?:^|&)([A-Za-z_][\w-]*)=", s)))
    return out


def case_sources():
    files = sorted((ROOT / "cases").rglob("*.py")) + sorted((ROOT / "harness").rglob("*.py"))
    return {str(p.relative_to(ROOT)): p.read_text() for p in files}


def misspelt(queries, keys):
    return sorted({(name, path, k) for name, path, found in queries for k in found
                   if k not in urls.accepted(keys, path) and not k.startswith("x-")})


def test_hand_built_urls_in_cases_use_only_keys_their_path_accepts(server_keys):
    queries = hand_built_queries(case_sources())
    assert len(queries) > 40, "few hand-built URLs found: the pattern no longer fits the cases"
    assert misspelt(queries, server_keys) == []


def test_the_url_check_sees_a_misspelt_key(server_keys):
    sources = case_sources()
    sources["cases/test_resp.py"] += '\nURL = f"/upgrade?then=close&untl={1}"\n'
    assert misspelt(hand_built_queries(sources), server_keys) == [("cases/test_resp.py", "/upgrade", "untl")]
