"""Logstash sinks: ``tcp`` input with the ``json_lines`` codec, and the ``http`` input.

TCP has no acknowledgement: an event counts as delivered once the kernel took
it (``sendall`` returned); events in flight when Logstash dies can be lost.
Use the http input when loss in that window matters: it answers each batch
(200 delivered; 429 and 5xx retried; 413 split; other 4xx dead-lettered).
Both take a client certificate (``cert_file``/``key_file``) for inputs that
require one (``ssl_client_authentication => required``).
Every document carries ``event.id`` (the deterministic id) so a Logstash
Elasticsearch output with ``document_id => "%{[event][id]}"`` deduplicates
retries.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

import requests

from modelmon.exporters.logs.sinks import (
    Item,
    SendResult,
    client_tls_context,
    parse_retry_after,
    split_userinfo,
    tls_files,
    with_event_ids,
)

log = logging.getLogger(__name__)
# How long a new TLS 1.3 connection waits for the server to refuse the client
# certificate before the first batch is written (once per connection).
_VERDICT_WAIT = 1.0


class LogstashTcpSink:
    name = "logstash_tcp"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 5000, timeout: float = 10.0,
                 tls: bool = False, ca_certs: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 verify_certs: bool = True) -> None:
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"port: expected a TCP port number (1-65535), got {port!r}")
        self.host, self.port, self.timeout = host, int(port), timeout
        ca, cert, key = tls_files(ca_certs=ca_certs, ca_file=ca_file,
                                  cert_file=cert_file, key_file=key_file)
        if not tls and (ca or cert):
            raise ValueError("tls: set tls: true to use ca_file/ca_certs/cert_file")
        self._context = (client_tls_context(ca_file=ca, cert_file=cert, key_file=key,
                                            verify_certs=verify_certs) if tls else None)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._context is not None:
            try:
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
                _await_tls13_verdict(sock, min(self.timeout, _VERDICT_WAIT))
            except BaseException:
                sock.close()
                raise
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


def _await_tls13_verdict(sock: socket.socket, wait: float) -> None:
    """Raise if the server refuses this client after a TLS 1.3 handshake.

    In TLS 1.3 the client's handshake ends before the server has checked the
    client certificate; a server that requires one answers with an alert a
    round trip later. json_lines has no acknowledgement, so without this wait
    the first batch would be written into a connection the server is closing,
    and counted delivered. The input never sends data: silence is acceptance.
    """
    import ssl

    if not isinstance(sock, ssl.SSLSocket) or sock.version() != "TLSv1.3":
        return  # up to TLS 1.2 the verdict is part of the handshake
    previous = sock.gettimeout()
    sock.settimeout(wait)
    try:
        if sock.recv(1) == b"":
            raise ConnectionError("closed by the server right after the TLS handshake "
                                  "(is a client certificate required? set cert_file/key_file)")
    except (TimeoutError, ssl.SSLWantReadError):
        pass
    finally:
        sock.settimeout(previous)


class LogstashHttpSink:
    name = "logstash_http"

    def __init__(self, *, url: str, username: str | None = None, password: str | None = None,
                 ca_certs: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 verify_certs: bool = True, timeout: float = 30.0) -> None:
        self.url, url_user, url_password = split_userinfo(url)  # self.url is logged
        if url_user is not None and username is None:
            username, password = url_user, url_password
        self._session = requests.Session()
        if username is not None:
            self._session.auth = (username, password or "")
        ca, cert, key = tls_files(ca_certs=ca_certs, ca_file=ca_file,
                                  cert_file=cert_file, key_file=key_file)
        # Given with each request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
        # override a Session's verify, which would ignore the configured CA.
        self._verify: str | bool = ca if ca else verify_certs
        self._cert: str | tuple[str, str] | None = ((cert, key) if key else cert) if cert else None
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
                self.url, data=body, timeout=self._timeout, verify=self._verify, cert=self._cert,
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
