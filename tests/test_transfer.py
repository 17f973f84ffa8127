"""The large transfers' streams and sizes: the counted stream shows any
piece lost, repeated or moved; transfers follow the buffers and --volume."""

import pytest

from harness import transfer
from harness.client import counted, pattern
from harness.streams import first_difference


def test_counted_stream_numbers_its_blocks():
    data = counted(3 * 4096)
    assert [data[i * 4096:i * 4096 + 8] for i in range(3)] == [i.to_bytes(8, "big") for i in range(3)]
    assert counted(5000, 3000) == data[3000:8000]


@pytest.mark.parametrize("shift", [1, 251, 4096, 251 * 16])
def test_a_repeated_piece_shows_in_the_counted_stream_but_not_always_in_the_pattern(shift):
    size = 64 * 4096
    for stream in (counted, pattern):
        sent = stream(size)
        got = (sent[:20000] + sent[20000 - shift:])[:size]  # `shift` bytes delivered twice
        at = first_difference(got, sent)
        if stream is counted:
            assert at is not None and 20000 <= at < 20000 + 4096 + 8  # by the next block number
        elif shift % 251 == 0:
            assert at is None  # what the counted stream is for


def test_first_difference():
    assert first_difference(b"abc", b"abc") is None
    assert first_difference(b"abd", b"abc") == 2
    assert first_difference(b"ab", b"abc") == 2
    big = bytes(200000)
    assert first_difference(big[:150000] + b"x" + big[150001:], big) == 150000


def test_transfers_follow_the_largest_buffer_and_the_volume(monkeypatch):
    monkeypatch.delenv(transfer.VOLUME_ENV, raising=False)
    wraps = transfer.WRAPS
    assert transfer.wrapping(1024) == wraps * transfer.TLS_RECORD
    assert transfer.wrapping(None) == wraps * transfer.MHD_DEFAULT_POOL
    assert transfer.wrapping(1 << 20) == wraps << 20
    assert transfer.wrapping(None, sockbuf=32768, wraps=2) == 2 * 65536
    monkeypatch.setenv(transfer.VOLUME_ENV, "3")
    assert transfer.wrapping(None) == 3 * wraps * transfer.MHD_DEFAULT_POOL


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5"])
def test_a_bad_volume_is_refused(monkeypatch, bad):
    monkeypatch.setenv(transfer.VOLUME_ENV, bad)
    with pytest.raises(SystemExit, match=transfer.VOLUME_ENV):
        transfer.volume()
