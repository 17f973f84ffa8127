"""The client's TLS layer (harness/codec.py) against a TLS server made with
the standard ssl module: handshake, data both ways, records as asked, and
how the peer's end is told apart (close_notify or a bare FIN)."""

import socket
import ssl
import threading

import pytest

from harness.certs import TestPKI
from harness.client import Conn, TLSFailure


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPKI(tmp_path_factory.mktemp("pki"))


class TLSServer:
    """Accepts one connection, records every TLS record's plaintext size,
    echoes what it reads, then ends as told: 'close_notify' or 'fin'."""

    def __init__(self, pki, end):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki.cert), str(pki.key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.transport = "https"
        self.end, self.ctx = end, ctx
        self.reads = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        raw, _ = self.listener.accept()
        raw.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
            data = tls.recv(65536)  # one record at most per recv
            self.reads.append(data)
            tls.sendall(data.upper())
            if self.end == "close_notify":
                tls.unwrap().close()  # sends close_notify, then waits for the client's
            else:
                tls.shutdown(socket.SHUT_RDWR)  # TCP only: no close_notify
                tls.close()
        except (ssl.SSLError, OSError):
            pass  # e.g. the client refused the certificate
        finally:
            self.listener.close()

    def events(self, rid=None):
        return []


@pytest.mark.parametrize("end", ["close_notify", "fin"])
def test_echo_and_how_it_ended(pki, end):
    srv = TLSServer(pki, end)
    conn = Conn(srv, "r1", tls_context=pki.client_context())
    assert conn.clean_end == "close_notify"
    conn.send(b"hello tls")
    data, how = conn.read_to_end()
    assert data == b"HELLO TLS"
    assert how == ("close_notify" if end == "close_notify" else "fin-without-close_notify")
    conn.close()
    srv.thread.join(5)


def test_parts_are_separate_records(pki):
    srv = TLSServer(pki, "close_notify")
    conn = Conn(srv, "r1", tls_context=pki.client_context())
    conn.send_parts([b"first", b"second"], one_write=True)
    conn.read_to_end()
    conn.close()
    srv.thread.join(5)
    assert srv.reads == [b"first"], "two parts should have been two TLS records"


def test_unverified_server_is_refused(pki, tmp_path):
    other = TestPKI(tmp_path)  # another CA: the client must not trust the server
    srv = TLSServer(pki, "close_notify")
    with pytest.raises(TLSFailure, match="certificate verify failed"):
        Conn(srv, "r1", tls_context=other.client_context())
