"""harness/ws.py: the raw-frame side of the WebSocket client, on canned bytes."""

import pytest
from websockets.frames import Opcode

from harness import ws


class CannedConn:
    """What Conn.read_exact gives, from a fixed byte string."""

    def __init__(self, data):
        self.data = data

    def read_exact(self, n, seconds=None):
        if len(self.data) < n:
            raise AssertionError("the stream ended")
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_accept_of_the_rfc_example_key():
    assert ws.accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_read_frame_parses_a_server_close_frame_and_leaves_the_rest():
    conn = CannedConn(b"\x88\x02\x03\xea" + b"\x81\x02hi")
    frame = ws.read_frame(conn)
    assert frame.opcode == Opcode.CLOSE and ws.close_code(frame) == (1002, "")
    assert ws.read_frame(conn).data == b"hi"


def test_read_frame_of_a_64_bit_length():
    payload = bytes(70000)
    conn = CannedConn(b"\x82\x7f" + len(payload).to_bytes(8, "big") + payload)
    assert ws.read_frame(conn).data == payload


def test_a_close_frame_without_a_code_reads_as_1005():
    assert ws.close_code(ws.read_frame(CannedConn(b"\x88\x00")))[0] == 1005


def test_client_frames_are_masked_unless_asked():
    masked, unmasked = ws.frame(Opcode.TEXT, b"hello"), ws.frame(Opcode.TEXT, b"hello", mask=False)
    assert masked[1] & 0x80 and len(masked) == 2 + 4 + 5
    assert unmasked == b"\x81\x05hello"


def test_a_truncated_frame_is_an_assertion():
    with pytest.raises(AssertionError):
        ws.read_frame(CannedConn(b"\x81\x05hel"))


def test_handshake_headers_name_key_and_version():
    headers = dict(ws.handshake_headers(key="k", version="8"))
    assert headers == {"Sec-WebSocket-Key": "k", "Sec-WebSocket-Version": "8"}
    assert "Sec-WebSocket-Version" not in dict(ws.handshake_headers(version=None))
