"""What every interop client is: the operations the cases use, and the two
ways one can fail. A client is synchronous to the case; whatever loop or
process it runs on is its own, and every wait it makes calls watch.check()
at least every POLL_SECONDS, which raises when nothing has moved on the
connection for the quiet period (harness/streams.py): no total time."""

POLL_SECONDS = 0.05  # the longest a client may wait between two watch.check() calls


class ClientSaw(AssertionError):
    """The client found the server's side wrong, or ended otherwise than the
    case asked: a handshake it refused, a message it could not read, a close
    it did not get. A finding (the case decides whose)."""


class ClientBroken(RuntimeError):
    """The client itself could not run (not installed, would not start, died
    on its own): a harness error, never a verdict about MHD."""


FEATURES = ("fragments", "pings", "early")


class Client:
    """One WebSocket client connection at a time.

    name       how tests, reports and -k name it ("node-ws")
    package    the Debian package that provides it
    features   what it can express, of FEATURES: "fragments" (one message
               as several frames: send_fragments), "pings" (a ping, and
               the pong seen: ping), "early" (its first frame in the
               handshake's own write: open(..., first=message))

    open(url, protocols, first=None) -> the subprotocol the server chose
        (None when the 101 named none). `url` carries the request id in its
        query (?rid=...): a browser cannot add a header.
    send(message)             str: a text message; bytes: a binary one
    send_fragments(parts)     one message, a frame per part (all str or all bytes)
    recv() -> message         str for text, bytes for binary
    ping(data) -> bytes       the pong's payload
    close(code, reason) -> (code, reason) of the server's close frame, once
        the client has seen the connection end
    end()                     releases everything; idempotent
    """

    name = None
    package = None
    features = frozenset()

    def __init__(self, watch, tls=None):
        """watch: see the module docstring. tls: None for ws://; for wss://
        a certs.TestPKI, whose CA the client trusts (ca_pem, spki)."""
        self.watch = watch
        self.tls = tls
