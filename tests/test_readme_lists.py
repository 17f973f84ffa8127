"""What README.md says of the reference server's scripts and mutants is
what the binary says: the mutant counts ("75 mutants", "kills all 75")
against CONFORMANCE_MUTANT=list, the script list of the layout section
against `refserver --scripts`. Their descriptions live once, in the C
tables (servers/mutants.c, servers/scripts.c); the README only counts and
names them."""

import pathlib
import re
import subprocess

import pytest

from harness.tools import build

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def binary():
    try:
        return build.ensure_server()
    except build.BuildError as e:
        pytest.skip(f"the reference server cannot be built here, so its lists cannot be read: {e}")


def readme_mutant_counts(text):
    return [int(n) for n in re.findall(r"\b(\d+) mutants\b", text) + re.findall(r"\bkills all (\d+)\b", text)]


def readme_scripts(text):
    """The script names the layout section lists, in its order."""
    m = re.search(r"upgraded socket, chosen by `then=`.*?`refserver --help` too: (.*?)\),", text, re.S)
    assert m, "README.md's layout section no longer lists the scripts where this test looks: fix the pattern"
    return [name.strip() for name in " ".join(m.group(1).split()).split(",")]


def test_readme_counts_the_mutants_the_library_lists(binary):
    mutants = build.mutant_names(binary, build.mutants_library(binary))
    counts = readme_mutant_counts(README.read_text())
    assert counts, "README.md no longer counts the mutants where this test looks: fix the pattern"
    assert set(counts) == {len(mutants)}, f"README.md's mutant counts {counts}; servers/mutants.c has {len(mutants)}"
    assert all(m.breaks for m in mutants.values()), "a mutant without its description in servers/mutants.c"


def test_readme_lists_the_scripts_the_binary_lists(binary):
    out = subprocess.run([str(binary), "--scripts"], capture_output=True, text=True, check=True, timeout=30).stdout
    scripts = [line.split("\t") for line in out.splitlines()]
    assert all(len(s) == 2 and s[1] for s in scripts), "a script without its description in servers/scripts.c"
    assert readme_scripts(README.read_text()) == [name for name, _ in scripts]


def test_the_checks_see_a_wrong_count_and_a_missing_script():
    text = README.read_text()
    assert 76 in readme_mutant_counts(text.replace("75 mutants", "76 mutants", 1))
    assert "cork" not in readme_scripts(text.replace(" cork,", "", 1))
