"""No call cycles between the reference server's C files: in the graph
"file A uses a function (or variable) defined in file B", read with `nm`
from the objects of the build the suite makes (harness/tools/build.py),
there is no cycle. A cycle means that neither file can be read, changed or
tested without the other; the fix is to move what both need into a file
below them (as request.c and context.c are)."""

import shutil
import subprocess

import pytest

from harness.tools import build


def symbol_graph(objects):
    """{file: {file whose global symbol it uses}} for the object files
    `objects` ({source file name: path of its .o}), from `nm`."""
    defined, used = {}, {}
    for name, obj in objects.items():
        out = subprocess.run(["nm", "-g", "--format=posix", str(obj)], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            symbol, kind = line.split()[:2]
            if kind == "U":
                used.setdefault(name, set()).add(symbol)
            elif kind not in "wv":  # a weak reference defines nothing
                defined[symbol] = name
    return {name: {defined[s] for s in used.get(name, ()) if s in defined and defined[s] != name}
            for name in objects}


def find_cycle(graph):
    """One cycle of `graph` ({node: set of nodes}) as a list of nodes, the
    first repeated at the end, or None."""
    state = {}  # node: "open" while on the path, "done" once all it reaches is seen

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_finder_names_a_cycle_and_passes_a_tree():
    assert find_cycle({"main.c": {"scenarios.c", "upgraded.c"}, "scenarios.c": {"upgraded.c"},
                       "upgraded.c": {"request.c"}, "request.c": set()}) is None
    assert find_cycle({"main.c": {"scenarios.c"}, "scenarios.c": {"upgraded.c"},
                       "upgraded.c": {"scenarios.c"}}) == ["scenarios.c", "upgraded.c", "scenarios.c"]


@pytest.fixture(scope="module")
def server_objects():
    """{source file: its object} of the reference server, built (or brought
    up to date) as the suite builds it."""
    if shutil.which("nm") is None:
        pytest.skip("nm is not installed (apt-get install binutils)")
    try:
        binary = build.ensure_server()
    except build.BuildError as e:
        pytest.skip(f"the reference server cannot be built here, so its objects cannot be read: {e}")
    objdir = binary.parent / "CMakeFiles" / "refserver.dir"
    objects = {p.name[:-len(".o")]: p for p in sorted(objdir.glob("*.c.o"))}
    assert objects, f"no object files in {objdir}: the build layout changed, fix this test's path"
    return objects


def test_no_call_cycle_between_the_servers_c_files(server_objects):
    graph = symbol_graph(server_objects)
    assert "request.c" in graph["main.c"], "main.c calls request_free: if the graph lacks it, nm's reading broke"
    cycle = find_cycle(graph)
    assert cycle is None, "call cycle between C files in servers/: " + " -> ".join(cycle)
