"""One interop client connection in a case: the client, the request id it
names in its URL's query (a browser cannot add a header), and the server's
events about it (client.Tagged)."""

from .. import ws
from ..client import Tagged
from .clients import CLIENTS
from .watch import Watch


class InteropSession(Tagged):
    def __init__(self, server, rid, client, tls=None):
        self.server = server
        self.rid = rid
        self.url = ws.uri(server, f"/ws?rid={rid}")
        self.client = CLIENTS[client](Watch(server.port, what=f"{client}'s WebSocket exchange"), tls)

    def open(self, protocols=(), first=None):
        """The subprotocol the server chose; `first` is sent in the
        handshake's own write (clients that can: Client.early)."""
        return self.client.open(self.url, list(protocols), first)

    def end(self):
        self.client.end()
