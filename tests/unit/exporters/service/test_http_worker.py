"""The request scanner of modelmon serve's worker: when is a request whole, and
what is refused before it is read."""

from __future__ import annotations

import pytest

from modelmon.exporters.service.http_worker import ReadLimits, scan

LIMITS = ReadLimits(max_head_bytes=1024, max_body_bytes=100)


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
