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
        # For clients outside this process: the CA as a file (Node's ws,
        # aiohttp), and the server key's SPKI hash (Chromium trusts a key
        # given as --ignore-certificate-errors-spki-list, not a CA file).
        self.ca_pem = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.spki = _spki_sha256(cert.cert_chain_pems[0].bytes())
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


def _spki_sha256(cert_pem):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()
