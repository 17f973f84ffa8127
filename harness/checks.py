"""Assertions the cases share. Each failure message says what the rule
expected and what was seen, including what MHD's API returned."""

import contextlib

from .client import counted
from .server import EventTimeout, ServerDied
from .streams import Stall, check_bytes
from .transfer import sha256
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


def settle(conn, seconds=2):
    """The server writes its event after MHD's call returns, so the client can
    see the response first: wait until the request's last queue event is in."""
    try:
        conn.wait_event("queue", seconds=seconds)
    except EventTimeout:
        pass


def api_story(conn):
    """What the server's MHD calls returned for this connection, in one line."""
    settle(conn)
    parts = []
    for e in conn.events():
        if e["ev"] in ("queue", "add_header", "create_response", "del_header", "set_options", "action"):
            what = e.get("what") or e.get("action") or f"{e.get('name')}: {e.get('value')}"
            parts.append(f"{e['ev']}({what})={'YES' if e.get('result') else 'NO'}")
    # MHD's log lines carry no request id: take those logged while this
    # request's events were being written.
    mine = conn.events()
    first, last = (mine[0]["t"], mine[-1]["t"]) if mine else (0, 0)
    logs = [e["msg"] for e in conn.server.events() if e["ev"] == "mhd_log" and first <= e["t"] <= last][-3:]
    text = ", ".join(parts) or "no MHD call reported"
    if logs:
        text += "; MHD log: " + " | ".join(logs)
    return text


def expect_101(conn, seconds=None):
    """Reads the head and requires a 101 (the upgrade went through)."""
    head = conn.read_head(**({"seconds": seconds} if seconds else {}))
    assert head.status == 101, (
        f"expected '101 Switching Protocols', got {head.status_line()!r} [{api_story(conn)}]")
    return head


def expect_refused(conn, what="upgrade"):
    """The queue call `what` returned MHD_NO and nothing of that response
    reached the wire: the client sees the server's fallback (500 with
    X-Refused), never a 101."""
    head = conn.read_head()
    if head.status == 500:
        conn.wait_event("queue", what="fallback")
    results = conn.queue_results(what)
    assert head.status != 101, (
        f"MHD sent {head.status_line()!r}; the {what} response must have been refused [{api_story(conn)}]")
    assert results == [False], (
        f"MHD_queue_response({what}) returned {'YES' if results == [True] else results}; expected MHD_NO "
        f"[{api_story(conn)}]; wire: {head.status_line()!r}")
    assert head.status == 500 and head.get("x-refused") == "1", (
        f"expected the server's fallback (500 with X-Refused), got {head.status_line()!r} "
        f"[{api_story(conn)}]")
    return head


# Sent after a stream whose delivery a case checks: the echo must return
# exactly the stream, then this. Bytes MHD delivered twice (in extra_in and
# again on the socket, say) would come before it, and show.
SENTINEL = b"<sentinel:end-of-stream>"

ECHO_CHECK = b"echo-check"
# The echo script, closing by itself once it echoed ECHO_CHECK: the cases
# whose rule is not about how a connection ends do not depend on the
# client's end of stream reaching the application (it never does over
# HTTPS, U-HALF-2) nor on how CLOSE reaches the client (U-ACT-1).
# A query: server.url("/upgrade", **ECHO_ONCE, more=...).
ECHO_ONCE = {"then": "echo", "until": len(ECHO_CHECK)}


def expect_echo(conn, data=ECHO_CHECK):
    got = conn.exchange(data, len(data))
    assert got == data, f"the upgraded stream echoed {got!r} for {data!r}"


def expect_orderly_end(conn, want=b"", after="after MHD_UPGRADE_ACTION_CLOSE", seconds=None, story=True):
    """Exactly `want` first, then the orderly end of the stream (FIN; over
    TLS close_notify), all judged by progress: a stream that still moves
    is waited for; a quiet period with no byte and no end is a stall. The
    data first: a loss must show even where the baseline knows the end to
    be wrong."""
    data, end = conn.read_to_end(**({"seconds": seconds} if seconds else {}))
    told = f" [{api_story(conn)}]" if story else ""
    check_bytes(data, want, end, f"{after}, the {len(want)} bytes sent before the end", conn.quiet_seconds)
    if end == "open":
        raise Stall(f"{after}: no byte and no end of the stream for {conn.quiet_seconds:.1f} s"
                    + (f" after all {len(data)} bytes" if want else "") + f"; the connection is still open{told}")
    assert end == conn.clean_end, f"{after} the client saw {end!r} (expected an orderly {conn.clean_end}){told}"


def check_input_end(conn, whole, note=""):
    """The application's input stream (extra_in, then the socket) ended
    where the echo script was told to stop, after exactly `whole`."""
    end = conn.wait_event("echo_end")
    assert (end["how"], end["bytes"], end["sha256"]) == ("until", len(whole), sha256(whole)), (
        f"the application's input stream (extra_in + socket) ended {end['how']!r} after {end['bytes']} "
        f"bytes; {len(whole)} were sent{note}")


def echo_counted(conn, size):
    """Has the application echo `size` counted bytes, sent while the echo
    is read (both ways at once), and checks both streams; then lets the
    script CLOSE right after its last bytes."""
    conn.request(conn.server.url("/upgrade", then="echo", until=size))
    expect_101(conn)
    data = counted(size, 7)
    echoed = conn.exchange(data, len(data))
    check_bytes(echoed, data, what=f"{size} bytes echoed both ways at once")
    check_input_end(conn, data)
    finish(conn)


def finish(conn):
    """Ends a case whose rule is not about the end: waits until the
    server's script called CLOSE (it does so on its own, e.g. ECHO_ONCE),
    then closes the client's socket without judging how the end looked."""
    conn.wait_event("action", action="close")
    conn.close()


def echo_and_finish(conn):
    """The end most cases share: the echo works, then the script's CLOSE."""
    expect_echo(conn)
    finish(conn)


def upgrade_echo_close(connect, srv):
    """One upgraded connection through its whole life: the 101, one echo,
    the script's CLOSE, and MHD's notification that the connection closed."""
    conn = connect(srv)
    conn.request(srv.url("/upgrade", **ECHO_ONCE))
    expect_101(conn)
    expect_echo(conn)
    finish(conn)
    conn.wait_event("conn_closed")


class Tries:
    """The attempts a case repeated: how many ran, and each failure with
    the exception it raised."""

    def __init__(self):
        self.done = 0
        self.failed = []  # (exception, "attempt i: its first line")

    def lines(self, most=10):
        return [line for _, line in self.failed[:most]]

    def check(self, what):
        """Raises the failed attempts as one finding: of the class (and so
        the failure kind) they all share, e.g. a Stall when every failed
        attempt stalled; an AssertionError when they failed in different
        ways. Its first line: how many of how many `what`, and the first
        failure."""
        if not self.failed:
            return
        classes = {type(e) for e, _ in self.failed}
        cls = classes.pop() if len(classes) == 1 else AssertionError
        first = str(self.failed[0][0]).splitlines()[0] if str(self.failed[0][0]) else type(self.failed[0][0]).__name__
        mixed = "" if len(classes) == 0 else " (in different ways)"
        raise cls(f"{len(self.failed)} of {self.done} {what}{mixed}: {first}\n" + "\n".join(self.lines()))


def attempts(times, attempt, stop_after=None):
    """Runs attempt(i) for i in range(times), each failed assertion kept
    with its exception; stops after `stop_after` failures (each costs a
    deadline). Returns the Tries."""
    tries = Tries()
    for i in range(times):
        tries.done = i + 1
        try:
            attempt(i)
        except ServerDied:
            raise  # not one failed attempt: the end of all of them
        except AssertionError as e:
            tries.failed.append((e, f"attempt {i}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
            if stop_after and len(tries.failed) >= stop_after:
                break
    return tries


def connection_tokens(head):
    """All tokens of all Connection headers, lower-cased, in order."""
    return [t.strip().lower() for v in head.get_all("connection") for t in v.split(",") if t.strip()]


@contextlib.contextmanager
def server_survives(server, what):
    """For rules that promise the server keeps running (LOAD-1: all close
    cleanly): a death of `server` inside the block, a crash in MHD say, is
    the rule's failure, reported with the server's last words, whatever the
    client happened to notice first."""
    def died():
        return ServerDied(server.died_message(what))
    try:
        yield
    except Exception:
        if server.alive():
            raise
        raise died() from None  # the server's death explains whatever the client saw
    if not server.alive():
        raise died()
