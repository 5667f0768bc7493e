"""A loopback Graylog GELF input: the GELF 1.1 wire contract over UDP, TCP and HTTP.

* UDP: one datagram per message, plain, gzip or zlib; or chunked (magic
  ``1e 0f``, 8-byte message id, sequence number, count <= 128), reassembled
  by id whatever the order, dropped incomplete after ``chunk_timeout``
  (Graylog: 5 s); a repeated chunk replaces its twin.
* TCP: messages separated by a null byte, never compressed.
* HTTP: ``POST /gelf``, one message (or newline-separated ones, Graylog's bulk
  receiving), optionally ``Content-Encoding: gzip``; 202 when every message is
  valid, 400 otherwise.

A message is valid per the GELF 1.1 specification: a JSON object with
``version`` "1.1", non-empty ``host`` and ``short_message`` strings, a numeric
``timestamp`` and an integer ``level`` 0-7 when present, additional fields
named ``_[\\w.-]+`` (not ``_id``) with string or number values, and no other
keys. Invalid messages are counted in ``rejected`` with the reason.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FIELD = re.compile(r"^_[\w.\-]+$")
_STANDARD = {"version", "host", "short_message", "full_message", "timestamp", "level",
             "facility", "line", "file"}


def problem(message: Any) -> str | None:
    """Why ``message`` is not a valid GELF 1.1 message, or None."""
    if not isinstance(message, dict):
        return "not a JSON object"
    if message.get("version") != "1.1":
        return "version must be 1.1"
    for key in ("host", "short_message"):
        if not isinstance(message.get(key), str) or not message[key].strip():
            return f"{key} must be a non-empty string"
    if "timestamp" in message and (isinstance(message["timestamp"], bool)
                                   or not isinstance(message["timestamp"], int | float)):
        return "timestamp must be a number"
    level = message.get("level", 0)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 7:
        return "level must be an integer 0-7"
    for key, value in message.items():
        if key in _STANDARD:
            continue
        if not _FIELD.match(key) or key == "_id":
            return f"invalid field name {key!r}"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return f"field {key} must be a string or a number"
    return None


def decode(payload: bytes) -> bytes:
    if payload[:2] == b"\x1f\x8b":
        return gzip.decompress(payload)
    if payload[:1] == b"\x78":
        return zlib.decompress(payload)
    return payload


@dataclass
class GelfInput:
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    chunks_seen: int = 0
    http_status: list[int] = field(default_factory=list)  # scripted HTTP answers, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, raw: bytes) -> bool:
        try:
            message = json.loads(raw)
        except ValueError as exc:
            reason: str | None = f"not JSON: {exc}"
        else:
            reason = problem(message)
        with self.lock:
            if reason is None:
                self.messages.append(message)
            else:
                self.rejected.append(reason)
        return reason is None

    def ids(self) -> list[str]:
        with self.lock:
            return [m["_event.id"] for m in self.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) + len(self.rejected) >= count:
                    return True
            time.sleep(0.01)
        return False


class _Reassembly:
    def __init__(self, sink: GelfInput, timeout: float) -> None:
        self.sink, self.timeout = sink, timeout
        self.pending: dict[bytes, tuple[float, int, dict[int, bytes]]] = {}

    def datagram(self, data: bytes) -> None:
        if data[:2] != b"\x1e\x0f":
            self._complete(data)
            return
        if len(data) < 12:
            self.sink.rejected.append("chunk shorter than its header")
            return
        message_id, number, count = data[2:10], data[10], data[11]
        if not 0 < count <= 128 or number >= count:
            self.sink.rejected.append(f"chunk {number} of {count}")
            return
        with self.sink.lock:
            self.sink.chunks_seen += 1
        now = time.monotonic()
        for old in [k for k, (t, _, _) in self.pending.items() if now - t > self.timeout]:
            del self.pending[old]  # incomplete: dropped, as Graylog does
        started, expected, parts = self.pending.get(message_id, (now, count, {}))
        if expected != count:
            self.sink.rejected.append("chunk count changed within a message")
            return
        parts[number] = data[12:]
        if len(parts) == count:
            del self.pending[message_id]
            self._complete(b"".join(parts[n] for n in range(count)))
        else:
            self.pending[message_id] = (started, count, parts)

    def _complete(self, payload: bytes) -> None:
        try:
            self.sink.accept(decode(payload))
        except (OSError, zlib.error, EOFError) as exc:
            with self.sink.lock:
                self.sink.rejected.append(f"bad compression: {exc}")


def serve_udp(chunk_timeout: float = 5.0) -> tuple[GelfInput, int, threading.Event]:
    sink = GelfInput()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()
    reassembly = _Reassembly(sink, chunk_timeout)

    def run() -> None:
        with sock:
            while not stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                reassembly.datagram(data)

    threading.Thread(target=run, daemon=True).start()
    return sink, sock.getsockname()[1], stop


def serve_tcp(port: int = 0, tls: ssl.SSLContext | None = None
              ) -> tuple[GelfInput, int, threading.Event]:
    """With ``tls``: a TLS input (``tls_certs.server_context`` requires a client
    certificate); refused handshakes are counted in ``rejected``."""
    sink = GelfInput()
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.05)
    stop = threading.Event()

    def connection(conn: socket.socket) -> None:
        buffer = b""
        if tls is not None:
            try:
                conn.settimeout(5)
                conn = tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                sink.rejected.append(f"handshake refused: {exc}")
                conn.close()
                return
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    if buffer:
                        sink.rejected.append("unterminated message at close")
                    return
                buffer += data
                *frames, buffer = buffer.split(b"\0")
                for frame in frames:
                    if frame[:2] == b"\x1f\x8b" or frame[:1] == b"\x78":
                        sink.rejected.append("compressed message over TCP")
                    elif frame:
                        sink.accept(frame)

    def run() -> None:
        with server:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=connection, args=(conn,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return sink, server.getsockname()[1], stop


class _HttpHandler(BaseHTTPRequestHandler):
    sink: GelfInput

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.sink.lock:
            scripted = self.sink.http_status.pop(0) if self.sink.http_status else None
        if scripted is not None:
            return self._answer(scripted)
        if self.path != "/gelf":
            return self._answer(404)
        try:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            elif self.headers.get("Content-Encoding") == "deflate":
                body = zlib.decompress(body)
        except (OSError, zlib.error, EOFError):
            self.sink.rejected.append("bad compression")
            return self._answer(400)
        # Validate all first: a refused request stores nothing.
        lines = [line for line in body.split(b"\n") if line.strip()]
        try:
            reasons = [problem(json.loads(line)) for line in lines]
        except ValueError:
            reasons = ["not JSON"]
        if not lines or any(reasons):
            with self.sink.lock:
                self.sink.rejected.extend(r for r in reasons if r)
            return self._answer(400)
        for line in lines:
            self.sink.accept(line)
        self._answer(202)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve_http() -> tuple[GelfInput, ThreadingHTTPServer]:
    sink = GelfInput()
    handler = type("Handler", (_HttpHandler,), {"sink": sink})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return sink, server
