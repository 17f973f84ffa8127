"""The plugin (pytest.ini: -p harness.plugin) loads for every pytest run in
the checkout, the harness's own tests included; it sets up the reference
server, MHD and baseline only for a run that collects cases/."""

import os
import subprocess
import sys

from harness import ROOT
from harness.plugin.hooks import collects_cases


def test_the_harness_tests_collect_no_case():
    assert not collects_cases(["tests/test_outcome.py"], ROOT)
    assert not collects_cases(["tests"], ROOT)
    assert not collects_cases(["test_outcome.py::test_x"], ROOT / "tests")


def test_a_path_to_cases_or_above_them_collects_cases():
    assert collects_cases(["cases"], ROOT)  # pytest.ini's testpaths, when no path is given
    assert collects_cases(["cases/test_flag.py::test_x"], ROOT)
    assert collects_cases(["."], ROOT)
    assert collects_cases(["../test_flag.py"], ROOT / "cases" / "sub")
    assert collects_cases(["tests", "cases"], ROOT)


def test_a_name_that_is_no_path_counts_as_a_case():
    assert collects_cases(["harness.nonexistent"], ROOT)  # --pyargs: cannot tell, so set up as before


def test_a_pure_unit_test_runs_without_cmake(tmp_path):
    """Without cmake (nor anything else) on PATH the server cannot be built
    (exit 3); test_outcome.py must pass all the same."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_outcome.py"],
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "junit.xml" not in proc.stdout  # nor does it overwrite a run's reports/latest/junit.xml


def test_an_mhd_without_tls_has_its_https_cells_deselected_with_one_warning():
    from harness import modes
    assert modes.servable(("plain", "https"), True) == (("plain", "https"), None)
    transports, warning = modes.servable(("plain", "https"), False)
    assert transports == ("plain",)
    assert "without TLS" in warning and "HTTPS cells are deselected" in warning
    assert modes.servable(("plain",), False) == (("plain",), None)  # nothing left out: nothing to say
    assert modes.servable(("https",), False)[0] == ()  # --transport https alone: no case (exit 5), and the warning
