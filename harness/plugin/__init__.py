"""The pytest plugin of the suite (pytest.ini: -p harness.plugin): the
session's hooks (hooks.py), the fixtures cases use (fixtures.py), the gate's
plumbing per case and at the end (gate.py), progress when a run is quiet
(progress.py), the runs again of a case that met a known race (races.py),
which cases run and in what order (schedule.py, registered by hooks.py);
what they share is in state.py. pytest finds the hooks and
fixtures among this module's names."""

from .fixtures import (barrier, connect, control, interop, make_server, measure, observe, private_server,
                       real_clients_session, server, server_pool, ws_session)
from . import gate, progress
from .gate import pytest_collectreport, pytest_runtest_logreport, pytest_runtest_makereport, pytest_sessionfinish
from .hooks import (pytest_addoption, pytest_collection_finish, pytest_collection_modifyitems, pytest_configure,
                    pytest_generate_tests, pytest_report_header, pytest_sessionstart, pytest_terminal_summary)
from .progress import pytest_runtest_logfinish, pytest_runtest_logstart
from .races import pytest_runtest_protocol


def pytest_unconfigure(config):
    progress.stop(config)
    gate.junit_known_apart(config)


__all__ = ["barrier", "connect", "control", "interop", "make_server", "measure", "observe", "private_server",
           "real_clients_session", "server", "server_pool", "ws_session", "pytest_collectreport", "pytest_runtest_logreport",
           "pytest_runtest_makereport", "pytest_sessionfinish",
           "pytest_addoption", "pytest_collection_modifyitems", "pytest_configure", "pytest_generate_tests",
           "pytest_report_header", "pytest_sessionstart", "pytest_terminal_summary", "pytest_runtest_logfinish",
           "pytest_runtest_logstart", "pytest_unconfigure", "pytest_runtest_protocol", "pytest_collection_finish"]
