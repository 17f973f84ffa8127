"""harness/interop/known.py: a real client's known behaviour is data with
signatures, met like a baseline's deviation but never MHD's."""

import json

import pytest

from harness.baseline import BaselineError
from harness.interop import known

ENTRY = {"client": "chromium", "observed": "ends TLS without close_notify", "evidence": "2 runs",
         "signatures": [{"kind": "stall", "pattern": "no byte"}], "cases": ["test_closing*[*-chromium]"]}


def write(tmp_path, behaviours):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"schema": 1, "behaviours": behaviours}))
    return path


def test_a_known_behaviour_covers_its_client_cases_only(tmp_path):
    behaviours = known.load(write(tmp_path, {"bare-fin": ENTRY}))
    got = known.expectation(behaviours, "test_closing_handshake_with_a_status_code[epoll-https-chromium]", "chromium")
    assert got.whose == "client chromium" and got.rule == "U-WS-6"
    assert got.matches("stall", "[MHD, U-WS-6] no byte for 5 s") and not got.matches("changed", "no byte")
    assert known.expectation(behaviours, "test_closing_handshake_with_a_status_code[epoll-https-node-ws]",
                             "node-ws") is None


def test_a_behaviour_without_signature_or_client_is_refused(tmp_path):
    with pytest.raises(BaselineError, match="no failure signatures"):
        known.load(write(tmp_path, {"x": {**ENTRY, "signatures": []}}))
    with pytest.raises(BaselineError, match="no 'client'"):
        known.load(write(tmp_path, {"x": {**ENTRY, "client": ""}}))


def test_the_project_file_reads():
    assert isinstance(known.load(), dict)
