"""Is a request whole yet? The framing rules of HTTP/1.1 requests, read without a socket.

modelmon serve's worker (http_worker.py) reads requests on its main loop and
asks this, after each read, whether to wait for more bytes, hand the request
to a thread, or refuse it (431, 413, 400) without reading further.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadLimits:
    """How long and how much a client may take to send one request (seconds, bytes)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    write_timeout: float = 30.0
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = 1 << 20
    #: Bytes of unfinished requests one worker holds at most, all clients
    #: together: past it the client that brought the excess gets 503.
    max_buffered_bytes: int = 64 << 20


#: scan() verdicts; any other verdict is the bytes of an answer refusing the request.
WAIT = "wait"
READY = "ready"


def response(status: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def too_large(limit: int) -> bytes:
    # The same answer as the app's own 413 (exporters/service/app.py).
    body = json.dumps({"status": "error", "errors": [
        f"body: exceeds ingest.max_body_bytes={limit}; send smaller batches or raise the limit"
    ]}) + "\n"
    return response("413 Content Too Large", "application/json", body.encode())


_HEAD_TOO_LARGE = response("431 Request Header Fields Too Large", "text/plain",
                            b"request header fields too large\n")
BUSY = response("503 Service Unavailable", "text/plain",
                  b"too many requests being received; retry\n", "Retry-After: 1\r\n")
_BAD_CHUNK = response("400 Bad Request", "text/plain", b"malformed chunked body\n")


@dataclass
class Framing:
    """What is known of a request so far: each scan resumes where the last stopped,
    so a body trickled in tiny pieces costs linear, not quadratic, work."""

    searched: int = 0       # the head's end was looked for up to here
    head_end: int = -1
    length: int | None = None
    chunked: bool = False
    chunk_pos: int = 0      # start of the next chunk-size line
    chunk_total: int = 0


def _chunked_end(buf: bytearray, f: Framing, limit: int) -> str | bytes:
    """Whether the chunked body is complete (READY), needs more bytes (WAIT),
    or is refused (an answer)."""
    while True:
        eol = buf.find(b"\r\n", f.chunk_pos)
        if eol < 0:
            return WAIT if len(buf) - f.chunk_pos < 1024 else _BAD_CHUNK
        try:
            size = int(bytes(buf[f.chunk_pos:eol]).split(b";")[0].strip(), 16)
        except ValueError:
            return READY  # gunicorn's parser answers 400 from what is buffered
        if size == 0:
            trailers = eol + 2
            if buf[trailers:trailers + 2] == b"\r\n" or buf.find(b"\r\n\r\n", trailers) >= 0:
                return READY
            return WAIT if len(buf) - trailers < 8192 else _HEAD_TOO_LARGE
        if f.chunk_total + size > limit:
            return too_large(limit)
        after = eol + 2 + size + 2
        if after > len(buf):
            return WAIT
        f.chunk_total += size
        f.chunk_pos = after


def scan(buf: bytearray, limits: ReadLimits, f: Framing | None = None,
         ) -> tuple[str | bytes, int]:
    """(READY | WAIT | an answer refusing the request, offset where the head
    ends or -1). Pass the same ``f`` while ``buf`` grows."""
    f = f if f is not None else Framing()
    if f.head_end < 0:
        head_end = buf.find(b"\r\n\r\n", max(0, f.searched - 3))
        f.searched = len(buf)
        if head_end < 0:
            return (_HEAD_TOO_LARGE if len(buf) > limits.max_head_bytes else WAIT), -1
        if head_end > limits.max_head_bytes:
            return _HEAD_TOO_LARGE, -1
        for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    f.length = int(value.strip())
                except ValueError:
                    return READY, head_end  # gunicorn's parser answers 400
            elif name == b"transfer-encoding":
                f.chunked = value.strip().lower().endswith(b"chunked")
        f.head_end = head_end
        f.chunk_pos = head_end + 4
    if f.chunked:
        return _chunked_end(buf, f, limits.max_body_bytes), f.head_end
    if f.length is None or f.length <= 0:
        return READY, f.head_end
    if f.length > limits.max_body_bytes:
        return too_large(limits.max_body_bytes), f.head_end
    return (READY if len(buf) >= f.head_end + 4 + f.length else WAIT), f.head_end
