"""The request scanner of modelmon serve's worker: when is a request whole, and
what is refused before it is read."""

from __future__ import annotations

import pytest

from modelmon.exporters.service.request_framing import Framing, ReadLimits, scan

LIMITS = ReadLimits(max_head_bytes=1024, max_body_bytes=100)
LIMITS_1M = ReadLimits(max_body_bytes=1 << 20)


def verdict(raw: bytes) -> str | bytes:
    return scan(bytearray(raw), LIMITS)[0]


@pytest.mark.parametrize("raw", [
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /ingest HTTP/1.1\r\ncontent-length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n",  # pipelined
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    # malformed framing goes to gunicorn's parser, which answers 400
    b"POST /ingest HTTP/1.1\r\nContent-Length: five\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_whole_requests_are_ready(raw):
    assert verdict(raw) == "ready"


@pytest.mark.parametrize("raw", [
    b"",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    b"POST /ingest HTTP/1.1\r\nContent-Length: 50\r\n\r\n[{\"model\":",
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
])
def test_partial_requests_wait(raw):
    assert verdict(raw) == "wait"


def test_oversized_heads_and_bodies_are_answered_without_reading_them():
    assert verdict(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000).startswith(b"HTTP/1.1 431")
    too_big = verdict(b"POST /ingest HTTP/1.1\r\nContent-Length: 101\r\n\r\n")
    assert too_big.startswith(b"HTTP/1.1 413") and b"ingest.max_body_bytes=100" in too_big
    chunked = b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + (
        b"40\r\n" + b"a" * 64 + b"\r\n") * 2
    assert verdict(chunked).startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("raw", [
    b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"POST /ingest HTTP/1.1\r\nContent-Length: 7\r\n\r\n[1,2,3]",
])
def test_a_request_fed_byte_by_byte_is_ready_exactly_when_whole(raw):
    framing = Framing()
    buf = bytearray()
    verdicts = []
    for byte in raw:
        buf.append(byte)
        verdicts.append(scan(buf, LIMITS, framing)[0])
    assert verdicts[-1] == "ready" and set(verdicts[:-1]) == {"wait"}


def test_chunked_framing_that_never_ends_is_refused():
    head = b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert verdict(head + b"1" * 2000).startswith(b"HTTP/1.1 400")  # no chunk-size line end
    assert verdict(head + b"0\r\nX: " + b"a" * 9000).startswith(b"HTTP/1.1 431")  # trailers


class CountingBuffer(bytearray):
    """Counts the bytes each search starts from (an upper bound of the work done)."""

    examined = 0

    def find(self, sub, start=0, *args):  # type: ignore[override]
        CountingBuffer.examined += len(self) - start
        return super().find(sub, start, *args)


def test_a_body_trickled_in_tiny_chunks_costs_linear_work():
    CountingBuffer.examined = 0
    buf = CountingBuffer(b"POST /ingest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    framing = Framing()
    for _ in range(5000):
        buf += b"1\r\na\r\n"
        assert scan(buf, LIMITS_1M, framing)[0] == "wait"
    buf += b"0\r\n\r\n"
    assert scan(buf, LIMITS_1M, framing)[0] == "ready"
    assert CountingBuffer.examined < 20 * len(buf)  # from scratch each time: ~2,500 x len
