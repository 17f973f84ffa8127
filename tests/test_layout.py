"""What the sources must agree on, read statically (nothing is built or
run): the events the reference server writes and their list in
spec/events.md."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVERS = ROOT / "servers"


def written_events():
    """{event: {"fields": set, "files": set}} from servers/*.c."""
    out = {}

    def add(name, fields, path):
        entry = out.setdefault(name, {"fields": set(), "files": set()})
        entry["fields"].update(fields)
        entry["files"].add(path.name)

    for path in sorted(SERVERS.glob("*.c")):
        text = path.read_text()
        for m in re.finditer(r'ev_begin \(&e, "(\w+)"', text):
            body = text[m.end():text.index("ev_end (&e)", m.end())]
            add(m.group(1), re.findall(r'ev_\w+ \(&e, "(\w+)"', body), path)
        # Helpers that write an event whose name they are given, with fields
        # of their own (scenarios.c: report_result; pressure.c: report_hold).
        for m in re.finditer(r'report_result \([^,]+, "(\w+)"', text):
            add(m.group(1), ["what", "result"], path)
        for m in re.finditer(r'report_hold \(ps, "(\w+)", (NULL|"\w+")', text):
            add(m.group(1), ["k", "read", "sent"] + (["dir"] if m.group(2) != "NULL" else []), path)
        # faults.c writes its one event, "fault", by report ("\"what\":...").
        for m in re.finditer(r'\breport \(((?:"(?:[^"\\]|\\.)*"\s*)+)', text):
            add("fault", re.findall(r'\\"(\w+)\\":', m.group(1)), path)
    return out


def documented_events():
    out = {}
    for line in (ROOT / "spec" / "events.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[a-z_]+", cells[0]) and cells[0] != "event":
            out[cells[0]] = {"fields": set(cells[1].split()), "files": set(cells[2].split())}
    return out


def test_every_event_written_is_documented_with_its_fields():
    written, documented = written_events(), documented_events()
    assert written, "no event found in servers/*.c: the pattern no longer fits the sources"
    assert sorted(set(written) - set(documented)) == [], "events written but not in spec/events.md"
    assert sorted(set(documented) - set(written)) == [], "events in spec/events.md that nothing writes"
    wrong = {name: {"written": sorted(w["fields"]), "documented": sorted(documented[name]["fields"])}
             for name, w in written.items() if w["fields"] != documented[name]["fields"]}
    assert wrong == {}, "fields differ between servers/*.c and spec/events.md"
    files = {name: (sorted(w["files"]), sorted(documented[name]["files"]))
             for name, w in written.items() if w["files"] != documented[name]["files"]}
    assert files == {}, "files differ between servers/*.c and spec/events.md"


# -- every rule has a case, for each transport it applies to -------------------
CASES = ROOT / "cases"
# A case is run over the transports when it takes one of these (they are,
# parametrized by mode and transport); the API family checks the header
# alone, with no transport.
TRANSPORT_FIXTURES = {"server", "make_server", "private_server", "mode", "transport"}  # not connect, ws_session: no mode


def case_transports(sources):
    """{rule: set of transports its cases cover} from case sources
    ({file name: text}), read with ast: nothing is collected or run."""
    import ast
    covered = {}
    for text in sources.values():
        tree = ast.parse(text)
        # Rules a module names through a table (test_api.py: PROGRAMS).
        table_rules = {k.value for node in ast.walk(tree) if isinstance(node, ast.Dict)
                       for k in node.keys if isinstance(k, ast.Constant) and str(k.value).startswith("U-")}
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
                continue
            marks = [ast.unparse(d) for d in fn.decorator_list]
            rules = set()
            for d in fn.decorator_list:
                for node in ast.walk(d):
                    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("mark.rule"):
                        rules |= {a.value for a in node.args if isinstance(a, ast.Constant)}
                        if any(not isinstance(a, ast.Constant) for a in node.args):
                            rules |= table_rules
            args = {a.arg for a in fn.args.args}
            if not args & TRANSPORT_FIXTURES:
                transports = {"-"}
            elif any("plain_only" in m for m in marks):
                transports = {"plain"}
            elif any("tls_only" in m for m in marks):
                transports = {"https"}
            else:
                transports = {"plain", "https"}
            for rule in rules:
                covered.setdefault(rule, set()).update(transports)
    return covered


def missing_cases(sources):
    """{rule: transports it applies to and no case covers}."""
    from harness import catalog
    covered = case_transports(sources)
    out = {}
    for rule in catalog.load().values():
        # The catalogue: every rule over both transports, unless it says
        # "plain only", is about HTTPS ("With HTTPS, ..."), or is about the
        # API shape alone.
        need = ({"-"} if rule.family == "API" else {"https"} if rule.promise.startswith("With HTTPS")
                else {"plain"} if "plain only" in rule.promise else {"plain", "https"})
        lacking = need - covered.get(rule.id, set())
        if lacking:
            out[rule.id] = sorted(lacking)
    return out


def case_sources():
    return {p.name: p.read_text() for p in sorted(CASES.glob("test_*.py"))}


# Rules of the catalogue whose cases an open issue will add, with that
# issue's title: reported as untested until then. The issue empties its line.
PENDING = {}


def test_every_rule_has_a_case_for_each_transport():
    missing = missing_cases(case_sources())
    assert {r: t for r, t in missing.items() if r not in PENDING} == {}, (
        "catalogue rules without a case (rule: transports)")
    assert sorted(r for r in PENDING if r not in missing) == [], (
        "rules listed as pending that have their cases now: take them off PENDING")


def test_the_check_sees_a_rule_whose_case_is_gone():
    sources = case_sources()
    sources["test_resp.py"] = sources["test_resp.py"].replace('@pytest.mark.rule("U-RESP-6")', "")
    assert {r: t for r, t in missing_cases(sources).items() if r not in PENDING} == {"U-RESP-6": ["https", "plain"]}
    sources = case_sources()
    sources["test_sock.py"] = sources["test_sock.py"].replace("@pytest.mark.tls_only\n", "@pytest.mark.plain_only\n")
    assert {r: t for r, t in missing_cases(sources).items() if r not in PENDING} == {"U-SOCK-3": ["https"]}


# -- one home for each fact: the copies that must exist agree ---------------
def test_modes_agree_between_catalogue_server_and_harness():
    """The MODES table lives in the catalogue; the reference server (C) and
    harness/modes.py carry copies of it, which must say the same."""
    from harness import modes
    catalogue = re.findall(r"^\| (M-[A-Z-]+) \|", (ROOT / "spec" / "upgrade-rules.md").read_text(), re.M)
    server = re.findall(r'^  \{ "([a-z-]+)", "(M-[A-Z-]+)",', (SERVERS / "main.c").read_text(), re.M)
    harness = [(m.name, m.id) for m in modes.MODES]
    assert sorted(catalogue) == sorted(m.id for m in modes.MODES), "catalogue MODES vs harness/modes.py"
    assert server == harness, "servers/main.c modes[] vs harness/modes.py (names, IDs, order)"


def test_readme_names_every_package_the_suite_installs():
    from harness.tools import deps
    readme = (ROOT / "README.md").read_text()
    assert [p for p in deps.BASE_PACKAGES if p not in readme] == []


def test_the_launcher_reads_the_python_modules_from_deps():
    """./conformance picks a Python that imports deps.MODULES; it keeps no
    list of its own, which would miss one (it missed trustme)."""
    from harness.tools import deps
    launcher = (ROOT / "conformance").read_text()
    assert "deps.IMPORT_CHECK" in launcher
    assert [m for m in deps.MODULES if re.search(rf"import [\w, ]*\b{m}\b", launcher)] == []


# -- what runs before any third-party module is installed -----------------
# The CLI checks the Debian packages (and installs them) before it imports
# anything else; so do compare, mhd and the server build. Their imports, and
# those of every harness module they import in turn, must be the standard
# library's (bench and the pytest machinery run after the check).
BEFORE_DEPS = ("harness/__main__.py", "harness/tools/deps.py", "harness/tools/mhd.py", "harness/tools/build.py",
               "harness/reports/compare.py", "harness/tools/rebaseline.py", "harness/tools/merge.py")


def _imports(path):
    """(external top-level module names, harness module paths) that the
    module at `path` imports at its top level, with ast."""
    import ast
    tree = ast.parse(path.read_text())
    external, internal = set(), set()
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in tree.body:  # top level only: a lazy import inside a function runs after the check
        if isinstance(node, ast.Import):
            external.update(a.name.split(".")[0] for a in node.names if not a.name.startswith("harness"))
            internal.update(a.name.replace(".", "/") for a in node.names if a.name.startswith("harness"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                mod = base + (node.module.split(".") if node.module else [])
                internal.add("/".join(mod))
                internal.update("/".join(mod + [a.name]) for a in node.names)  # a submodule, or a name in mod
            elif node.module.split(".")[0] == "harness":
                internal.add(node.module.replace(".", "/"))
                internal.update(node.module.replace(".", "/") + "/" + a.name for a in node.names)
            else:
                external.add(node.module.split(".")[0])
    return external, internal


def _module_file(name):
    for candidate in (ROOT / f"{name}.py", ROOT / name / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_commands_before_the_dependency_check_use_the_standard_library_only():
    import sys
    seen, todo, offenders = set(), [ROOT / p for p in BEFORE_DEPS], {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        external, internal = _imports(path)
        bad = sorted(m for m in external if m not in sys.stdlib_module_names)
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
        todo += [f for f in map(_module_file, internal) if f is not None]
    assert len(seen) > len(BEFORE_DEPS), "the import walk found nothing: the pattern no longer fits"
    assert offenders == {}, "modules the CLI imports before the dependency check import third-party modules"


def test_the_walk_sees_a_third_party_import(tmp_path):
    """The check above can fail: a module importing h11 is an offender."""
    external, _ = _imports(ROOT / "harness" / "client.py")
    assert "h11" in external


def test_the_options_that_choose_what_a_run_tests_are_declared_once():
    """--mhd, --rule, --mode, --transport: harness/options.py declares them
    for every command and the pytest plugin, with one help text each."""
    # The benchmarks' options (tools/refecho.py) are left to the change that
    # owns the benchmarks: they take options.add_mhd/add_mode/add_transport next.
    not_yet = {"harness/tools/refecho.py"}
    declaring = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "harness").rglob("*.py")
                       if re.search(r'\b(add|add_argument|addoption)\(\s*"--(mhd|rule|mode|transport)"', p.read_text()))
    assert [p for p in declaring if p not in not_yet] == ["harness/options.py"]
