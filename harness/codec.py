"""What goes between the cases' bytes and the TCP socket: nothing (plain),
or TLS done with the standard ssl module over memory buffers, so that the
client decides what goes into which TLS record and which TCP write, and
sees how the peer ended the stream (close_notify or a bare FIN)."""

import ssl
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


class PlainCodec:
    clean_end = "fin"
    peer_closed = False

    def encode(self, data):
        return bytes(data)

    def decode(self, raw):
        return raw

    def end_of_stream(self):
        """How the stream ended when the socket gave EOF."""
        return "fin"

    def close_write(self):
        return b""

    def handshake_step(self, raw):
        return b"", True


class TLSCodec:
    """TLS 1.2/1.3 client over two memory BIOs. encode() turns one write into
    records (one record per call up to 16 KiB); decode() turns received bytes
    into plaintext and notes a close_notify."""

    clean_end = "close_notify"

    def __init__(self, context, server_hostname="localhost"):
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        self.peer_closed = False  # close_notify received
        self.done = False

    def handshake_step(self, raw):
        """Feeds `raw`, returns (bytes to send, finished)."""
        if raw:
            self.incoming.write(raw)
        try:
            self.obj.do_handshake()
            self.done = True
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read(), self.done

    def encode(self, data):
        view = memoryview(data)
        while view:
            n = self.obj.write(view[:16384])
            view = view[n:]
        return self.outgoing.read()

    def decode(self, raw):
        self.incoming.write(raw)
        out = bytearray()
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                break
            if not chunk:
                # SSLObject.read gives b'' once the peer's close_notify is in
                # (no data yet is SSLWantReadError).
                self.peer_closed = True
                break
            out += chunk
        return bytes(out)

    def end_of_stream(self):
        return "close_notify" if self.peer_closed else "fin-without-close_notify"

    def close_write(self):
        """The close_notify alert, to send; the peer's is not waited for."""
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        return self.outgoing.read()
