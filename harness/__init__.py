"""upgrade-conformance harness: builds and runs the reference server, gives
pytest cases a raw HTTP client, and turns case outcomes into rule verdicts."""
