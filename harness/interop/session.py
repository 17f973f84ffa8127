"""One interop client connection in a case: the client, the request id it
names in its URL's query (a browser cannot add a header), and the server's
events about it (client.Tagged)."""

from .. import ws
from ..client import Tagged
from ..deadlines import Deadline
from ..streams import CAP_SECONDS
from .clients import CLIENTS
from .watch import Watch


class InteropSession(Tagged):
    def __init__(self, server, rid, client, tls=None):
        self.server = server
        self.rid = rid
        # The endpoint's own idle limit only as a backstop, at the streams'
        # cap: it cannot tell MHD forwarding its echo (0.9.75's TLS, slowly
        # on a busy machine) from a client gone quiet; the watch judges.
        idle_ms = int(Deadline(CAP_SECONDS).seconds * 1000)
        self.url = ws.uri(server, server.url("/ws", rid=rid, idle=idle_ms))
        self.watch = Watch(server.port, what=f"{client}'s WebSocket exchange")
        self.client = CLIENTS[client](self.watch, tls)

    def open(self, protocols=(), first=None):
        """The subprotocol the server chose; `first` is sent in the
        handshake's own write (clients whose features have "early")."""
        return self._doing("open", self.url, list(protocols), first)

    # The client's operations (base.Client), each named in what a stall
    # during it says: a stall at close() is not one in the middle of an echo.
    def send(self, message):
        return self._doing("send", message)

    def send_fragments(self, parts):
        return self._doing("send_fragments", parts)

    def recv(self):
        return self._doing("recv")

    def ping(self, data):
        return self._doing("ping", data)

    def close(self, code, reason):
        return self._doing("close", code, reason)

    def _doing(self, op, *args):
        self.watch.doing = op
        return getattr(self.client, op)(*args)

    def end(self):
        self.client.end()
