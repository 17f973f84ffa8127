"""RESP: the upgrade response object (rule catalogue, RESP)."""

import pytest

from harness.checks import (ECHO_ONCE, api_story, connection_tokens, echo_and_finish, expect_101, expect_echo, finish,
                            settle)


@pytest.mark.rule("U-RESP-1")
def test_create_with_handler_succeeds(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE))
    expect_101(conn)
    created = conn.wait_event("create_response", what="upgrade")
    assert created["result"], "MHD_create_response_for_upgrade(handler, cls) returned NULL"
    echo_and_finish(conn)


@pytest.mark.rule("U-RESP-1")
def test_create_with_null_handler_fails(server, connect):
    conn = connect(server)
    conn.request("/null-handler", upgrade=None)
    head = conn.read_head()
    created = conn.wait_event("create_response", what="upgrade-null-handler")
    assert not created["result"], "MHD_create_response_for_upgrade(NULL, cls) returned a response"
    assert head.status == 200 and conn.read_body() == b"hello\n", (
        f"the server did not go on normally after the NULL-handler call: {head.status_line()!r}")


@pytest.mark.rule("U-RESP-2")
def test_101_head_is_exact(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close"))
    head = expect_101(conn)
    assert head.status_line() == "HTTP/1.1 101 Switching Protocols", f"status line {head.status_line()!r}"
    connection = head.get_all("connection")
    assert len(connection) == 1, f"expected exactly one Connection header, got {connection!r}"
    assert connection_tokens(head) == ["upgrade"], f"Connection: {connection[0]!r}; expected 'Upgrade'"
    framing = [h for h in ("content-length", "transfer-encoding") if head.get_all(h)]
    assert not framing, f"a 101 has no body, yet it carries {framing}: {head.raw!r}"


@pytest.mark.rule("U-RESP-3")
def test_application_connection_token(server, connect, measure):
    """Where a Connection token the application adds ends up."""
    conn = connect(server)
    conn.request(server.url("/upgrade", then="close", conn="x-app-token"))
    head = conn.read_head()
    settle(conn)
    added = [e["result"] for e in conn.events("add_header") if e["name"] == "Connection"]
    measure({"add_header": added, "status": head.status, "connection_headers": head.get_all("connection")})


@pytest.mark.rule("U-RESP-4")
def test_connection_close_refused(server, connect):
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, conn="close"))
    head = conn.read_head()
    added = conn.wait_event("add_header", name="Connection")
    assert not added["result"], "MHD_add_response_header(upgrade response, Connection: close) returned MHD_YES"
    assert head.status == 101, f"the upgrade did not go out: {head.status_line()!r} [{api_story(conn)}]"
    assert connection_tokens(head) == ["upgrade"], f"Connection headers {head.get_all('connection')!r}"
    conn.wait_event("upgraded")
    echo_and_finish(conn)


@pytest.mark.rule("U-RESP-5")
def test_shared_response_runs_handler_per_connection(server, connect):
    conns = [connect(server) for _ in range(3)]
    for conn in conns:
        conn.request(server.url("/upgrade", then="echo", shared=True, until=len(b"conn-0")))
    for conn in conns:
        expect_101(conn)
        call = conn.wait_event("upgraded")
        assert call["cls_ok"], "the handler's cls is not the one given to MHD_create_response_for_upgrade"
    for i, conn in enumerate(conns):
        expect_echo(conn, f"conn-{i}".encode())
        assert len(conn.events("upgraded")) == 1, "the handler ran more than once for one connection"
    for conn in conns:
        finish(conn)


@pytest.mark.rule("U-RESP-6")
def test_application_connection_upgrade_not_doubled(server, connect):
    """The application adds Connection: Upgrade itself (as MHD's own
    examples once did): the 101 still has the token exactly once."""
    conn = connect(server)
    conn.request(server.url("/upgrade", **ECHO_ONCE, conn="Upgrade"))
    head = expect_101(conn)
    tokens = connection_tokens(head)
    assert tokens.count("upgrade") == 1, (
        f"the 101's Connection headers {head.get_all('connection')!r} carry the upgrade token "
        f"{tokens.count('upgrade')} times [{api_story(conn)}]")
    echo_and_finish(conn)
