"""Test certificates, made at test time with trustme (a test CA and a
server certificate for localhost / 127.0.0.1); never committed."""

import ssl


class TestPKI:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, folder):
        import trustme  # only HTTPS runs need it

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.key = folder / "server.key"
        self.cert = folder / "server.pem"
        cert.private_key_pem.write_to_path(str(self.key))
        cert.cert_chain_pems[0].write_to_path(str(self.cert))
        self._client_context = None

    def client_context(self):
        """Verifies the server against the test CA (and nothing else), as a
        real client would: certificate and host name. One context for the
        whole session: making one loads a CA store, which cost 16 ms per
        connection when every connection made its own."""
        if self._client_context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
            self.ca.configure_trust(ctx)
            self._client_context = ctx
        return self._client_context
