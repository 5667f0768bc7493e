"""A CloudWatch Logs endpoint for the cloudwatch sink's tests: moto's server on
loopback (``ThreadedMotoServer``: the Logs JSON API, ``X-Amz-Target:
Logs_20140328.<Action>``) behind a proxy that adds what moto leaves out and
injects the faults of the protocol.

What the proxy adds, as CloudWatch Logs answers it:

* the ``PutLogEvents`` limits moto does not check: more than 10,000 events,
  more than 1,048,576 bytes (UTF-8 size + 26 per event), a span of 24 hours
  or more, an event above 256 KiB -> 400 ``InvalidParameterException``;
* ``legacy_tokens``: sequence tokens as CloudWatch enforced them before 2023:
  a put must carry the stream's next token (none for a new stream), else 400
  ``InvalidSequenceTokenException`` with ``expectedSequenceToken``; the
  accepted put sent again (same token, same events) -> 400
  ``DataAlreadyAcceptedException``;
* ``retention_days``: events older than the group's retention are left out
  and reported in ``rejectedLogEventsInfo.expiredLogEventEndIndex``;
* ``hide_recent``: ``GetLogEvents`` leaves out events ingested less than this
  many seconds ago (the service's read-after-write lag).

``faults`` (consumed in order): ``"throttle"`` and ``"unavailable"`` answer
the next put with 400 ``ThrottlingException`` / 503
``ServiceUnavailableException``, not applying it; ``"ok"``, ``"500"``,
``"drop"`` (the connection closed) and ``"hold"`` (no answer until
``release``) are what the client hears of the next put moto applied.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.server import ThreadedMotoServer

CREDENTIALS = {"access_key_id": "AKIAMODELMONTEST", "secret_access_key": "moto-secret",
               "region": "us-east-1"}
_DAY_MS = 24 * 3600 * 1000


@contextmanager
def moto_logs() -> Iterator[str]:
    """The endpoint URL of a moto server on a free loopback port."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class LogsProxy:
    upstream: str
    url: str = ""
    faults: list[str] = field(default_factory=list)
    legacy_tokens: bool = False
    retention_days: int | None = None
    hide_recent: float = 0.0
    applied_puts: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # error code -> count
    actions: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # stream -> (next token, (token, digest) of the last accepted put)
    tokens: dict[str, tuple[str | None, tuple[str | None, str] | None]] = field(
        default_factory=dict)
    ingested: dict[tuple[str, str, int, str], float] = field(default_factory=dict)


def limit_error(events: list[dict[str, Any]]) -> str | None:
    """What CloudWatch Logs says of a PutLogEvents request outside its limits."""
    if len(events) > 10_000:
        return "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: " \
               "Member must have length less than or equal to 10000"
    size = sum(len(e["message"].encode()) + 26 for e in events)
    if size > 1_048_576:
        return f"Upload too large: {size} bytes exceeds limit of 1048576"
    if any(len(e["message"].encode()) + 26 > 256 * 1024 for e in events):
        return "Log event too large: exceeds limit of 262144 bytes"
    stamps = [e["timestamp"] for e in events]
    if stamps and max(stamps) - min(stamps) >= _DAY_MS:
        return "The batch of log events in a single PutLogEvents request cannot span more than " \
               "24 hours."
    if stamps != sorted(stamps):
        return "Log events in a single PutLogEvents request must be in chronological order."
    return None


def _handler(proxy: LogsProxy) -> type[BaseHTTPRequestHandler]:
    host, port = proxy.upstream.removeprefix("http://").split(":")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
            with proxy.lock:
                proxy.refused[code] = proxy.refused.get(code, 0) + 1
            body = json.dumps({"__type": code, "message": message, **extra}).encode()
            self._answer(status, body, [("Content-Type", "application/x-amz-json-1.1"),
                                        ("x-amzn-RequestId", "proxy")])

        def _upstream(self, body: bytes | None) -> tuple[int, bytes, list[tuple[str, str]]]:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "content-length")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            kept = [(k, v) for k, v in resp.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            return resp.status, payload, kept

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
            with proxy.lock:
                proxy.actions[action] = proxy.actions.get(action, 0) + 1
            if action == "PutLogEvents":
                self._put(json.loads(body))
            elif action == "GetLogEvents":
                self._get(body)
            else:
                self._answer(*self._upstream(body))

        def _put(self, request: dict[str, Any]) -> None:
            events = request.get("logEvents", [])
            error = limit_error(events)
            if error is not None:
                self._error(400, "InvalidParameterException", error)
                return
            stream = f"{request['logGroupName']}/{request['logStreamName']}"
            token = request.get("sequenceToken")
            digest = hashlib.sha256(json.dumps(events, sort_keys=True).encode()).hexdigest()
            with proxy.lock:
                fault = proxy.faults[0] if proxy.faults else "ok"
                if fault in ("throttle", "unavailable"):  # the put is not applied
                    proxy.faults.pop(0)
                expected, last = proxy.tokens.get(stream, (None, None))
            if proxy.legacy_tokens and token != expected:
                if last == (token, digest):
                    self._error(400, "DataAlreadyAcceptedException", "The given batch of log "
                                "events has already been accepted. The next batch can be sent "
                                f"with sequenceToken: {expected}", expectedSequenceToken=expected)
                else:
                    self._error(400, "InvalidSequenceTokenException", "The given sequenceToken "
                                f"is invalid. The next expected sequenceToken is: {expected}",
                                expectedSequenceToken=expected)
                return
            if fault == "throttle":
                self._error(400, "ThrottlingException", "Rate exceeded")
                return
            if fault == "unavailable":
                self._error(503, "ServiceUnavailableException", "The service is unavailable")
                return
            expired_end = None
            if proxy.retention_days is not None:
                oldest = time.time() * 1000 - proxy.retention_days * _DAY_MS
                kept = [e for e in events if e["timestamp"] >= oldest]
                if len(kept) < len(events):
                    expired_end = len(events) - len(kept) - 1  # sorted: the old ones first
                    request = {**request, "logEvents": kept}
            status, payload, headers = self._upstream(json.dumps(request).encode())
            if status != 200:
                fault = "ok"  # moto refused it (no such stream): not a put applied
            else:
                answer = json.loads(payload or b"{}")
                with proxy.lock:
                    if proxy.faults and fault == proxy.faults[0]:
                        proxy.faults.pop(0)
                    proxy.applied_puts += 1
                    now = time.monotonic()
                    for e in request["logEvents"]:
                        proxy.ingested[(request["logGroupName"], request["logStreamName"],
                                        e["timestamp"], e["message"])] = now
                    if proxy.legacy_tokens:
                        next_token = f"{proxy.applied_puts:056d}"
                        proxy.tokens[stream] = (next_token, (token, digest))
                        answer["nextSequenceToken"] = next_token
                if expired_end is not None:
                    answer.setdefault("rejectedLogEventsInfo", {})[
                        "expiredLogEventEndIndex"] = expired_end
                payload = json.dumps(answer).encode()
            if fault == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fault == "hold":
                proxy.held.set()
                proxy.release.wait(60)
                self.close_connection = True
                return
            if fault == "500":
                self._error(500, "InternalFailure", "injected after the put was applied")
                return
            self._answer(status, payload, headers)

        def _get(self, body: bytes) -> None:
            status, payload, headers = self._upstream(body)
            if status == 200 and proxy.hide_recent > 0:
                request, answer = json.loads(body), json.loads(payload)
                now = time.monotonic()
                group, stream = request["logGroupName"], request["logStreamName"]
                with proxy.lock:
                    answer["events"] = [
                        e for e in answer.get("events", [])
                        if now - proxy.ingested.get((group, stream, e["timestamp"], e["message"]),
                                                    -1e9) >= proxy.hide_recent]
                payload = json.dumps(answer).encode()
            self._answer(status, payload, headers)

    return Handler


@contextmanager
def logs_proxy(upstream: str, **options: Any) -> Iterator[LogsProxy]:
    proxy = LogsProxy(upstream, **options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.release.set()
        server.shutdown()
        server.server_close()
