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

    def client_context(self):
        """Verifies the server against the test CA, as a real client would."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx
