"""Logstash sinks: ``tcp`` input with the ``json_lines`` codec, and the ``http`` input.

TCP has no acknowledgement: an event counts as delivered once the kernel took
it (``sendall`` returned); events in flight when Logstash dies can be lost.
Use the http input when loss in that window matters: it answers each batch
(200 delivered; 429 and 5xx retried; 413 split; other 4xx dead-lettered).
Every document carries ``event.id`` (the deterministic id) so a Logstash
Elasticsearch output with ``document_id => "%{[event][id]}"`` deduplicates
retries.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

import requests

from modelmon.exporters.logs.sinks import Item, SendResult, parse_retry_after, with_event_ids

log = logging.getLogger(__name__)


class LogstashTcpSink:
    name = "logstash_tcp"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 5000, timeout: float = 10.0,
                 tls: bool = False, ca_certs: str | None = None) -> None:
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"port: expected a TCP port number (1-65535), got {port!r}")
        self.host, self.port, self.timeout = host, int(port), timeout
        self._tls = tls
        self._ca_certs = ca_certs
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._tls:
            import ssl

            ctx = ssl.create_default_context(cafile=self._ca_certs)
            sock = ctx.wrap_socket(sock, server_hostname=self.host)
        return sock

    def send(self, items: Sequence[Item]) -> SendResult:
        result = SendResult()
        docs = with_event_ids(items, result)
        data = b"".join(doc + b"\n" for _, doc in docs)
        try:
            if self._sock is None:
                self._sock = self._connect()
            self._sock.sendall(data)
        except OSError as exc:
            log.debug("logstash tcp %s:%s: %s", self.host, self.port, exc)
            self.close()
            return SendResult.all_retry(items, "connection_error")
        result.delivered = [item.seq for item, _ in docs]
        return result

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class LogstashHttpSink:
    name = "logstash_http"

    def __init__(self, *, url: str, username: str | None = None, password: str | None = None,
                 ca_certs: str | None = None, verify_certs: bool = True,
                 timeout: float = 30.0) -> None:
        self.url = url
        self._session = requests.Session()
        if username is not None:
            self._session.auth = (username, password or "")
        self._session.verify = ca_certs if ca_certs else verify_certs
        self._timeout = timeout

    def send(self, items: Sequence[Item]) -> SendResult:
        bad = SendResult()
        docs = with_event_ids(items, bad)
        if bad.dead:
            items = [item for item, _ in docs]
            bad.merge(self.send(items) if items else SendResult())
            return bad
        body = b"[" + b",".join(doc for _, doc in docs) + b"]"
        try:
            resp = self._session.post(
                self.url, data=body, timeout=self._timeout,
                headers={"Content-Type": "application/json"},
            )
        except requests.RequestException as exc:
            log.debug("logstash http %s: %s", self.url, exc)
            return SendResult.all_retry(items, "connection_error")
        status = resp.status_code
        if 200 <= status < 300:
            return SendResult(delivered=[i.seq for i in items])
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 429:
            return SendResult.all_retry(items, "throttled", retry_after)
        if status >= 500 or status in (401, 403, 404):
            return SendResult.all_retry(items, "server_error" if status >= 500 else "error",
                                        retry_after)
        if len(items) > 1:
            half = len(items) // 2
            result = SendResult(result="too_large" if status == 413 else "bad_request")
            result.merge(self.send(items[:half]))
            result.merge(self.send(items[half:]))
            return result
        result = SendResult(result="bad_request")
        result.add_dead(f"{status} {resp.text[:200]}", items[0].seq)
        return result

    def close(self) -> None:
        self._session.close()
