"""The harness package's modules import one another without a cycle: each
module can be read knowing only those below it. The graph is read with
ast (nothing is imported), from every import statement, those inside
functions too: a lazy import that closes a cycle is a cycle all the same."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "harness"


def module_name(path, root):
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package=PACKAGE):
    """{module: {harness modules it imports}}, e.g. "harness.tools.runner"."""
    files = {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.split(".")[0] == package.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
                elif node.module.split(".")[0] == package.name:
                    base = node.module.split(".")
                else:
                    continue
                module = ".".join(base)
                # `from . import x`: x is a module when there is one by that name;
                # a name that is not one is the package's (its __init__).
                submodules = {f"{module}.{a.name}" for a in node.names} & set(files)
                edges |= submodules
                if len(submodules) < len(node.names):
                    edges.add(module)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def cycles(graph):
    """Every cycle, once each, as a list of modules whose last imports the
    first; found by depth-first search along the graph's sorted edges."""
    found, state = [], {}  # state: 1 on the current path, 2 finished

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_harness_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["harness.tools.runner"], "the import walk found nothing: it no longer fits"
    assert [" -> ".join(c + c[:1]) for c in cycles(graph)] == []


def test_the_check_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walk_reads_the_import_forms_the_harness_uses(tmp_path):
    pkg = tmp_path / "harness"
    (pkg / "tools").mkdir(parents=True)
    (pkg / "__init__.py").write_text("ROOT = 1\n")
    (pkg / "catalog.py").write_text("from . import ROOT\n")
    (pkg / "tools" / "__init__.py").write_text("")
    (pkg / "tools" / "deps.py").write_text("def f():\n    from .runner import Fail\n")  # lazy: counts too
    (pkg / "tools" / "runner.py").write_text("from .. import ROOT, catalog\nfrom . import deps\n")
    graph = import_graph(pkg)
    assert graph["harness.catalog"] == {"harness"}
    assert graph["harness.tools.runner"] == {"harness", "harness.catalog", "harness.tools.deps"}
    assert cycles(graph) == [["harness.tools.deps", "harness.tools.runner"]]


def test_reports_run_nothing():
    """harness/reports/ reads runs' data and writes reports; what runs a
    process (the server binary, pytest) lives in harness/tools/."""
    runners = {"subprocess", "multiprocessing"}
    found = {}
    for path in sorted((PACKAGE / "reports").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found.update({path.name: n for n in names if n and n.split(".")[0] in runners})
    assert found == {}
