"""Graylog sink: GELF 1.1 over TCP (null-byte framing), UDP (gzip, chunked) or HTTP.

Each ECS document becomes one GELF message: ``host`` from ``host.hostname``,
``short_message`` from ``message``, ``timestamp`` (seconds) from
``@timestamp``, ``level`` (syslog severity) from ``log.level``, and every other
field flattened to an additional field named by its dotted path (``_model.name``,
``_event.id``: the deterministic id, which a Graylog pipeline can use to drop
a retried duplicate). Lists and booleans become JSON text (GELF values are
strings and numbers).

What each transport promises:

* ``http`` (Graylog's GELF HTTP input): each message is answered; 202 is
  delivered, 429/5xx retried, another 4xx dead-letters the message. With
  ``bulk: true`` a batch goes in one request as newline-separated messages
  (the input's "bulk receiving" option).
* ``tcp``: no acknowledgement; delivered once the kernel took the bytes (as
  the Logstash TCP sink). Messages are not compressed (the GELF TCP framing
  forbids it).
* ``udp``: fire and forget; gzip, split in chunks of ``chunk_size`` bytes
  (at most 128 chunks: a larger message is dead-lettered, never cut).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import re
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import requests

from modelmon.exporters.logs.logstash import _await_tls13_verdict as await_tls13_verdict
from modelmon.exporters.logs.sinks import (
    Item,
    SendResult,
    client_tls_context,
    documents,
    parse_retry_after,
    split_userinfo,
    tls_files,
)

log = logging.getLogger(__name__)

CHUNK_MAGIC = b"\x1e\x0f"
MAX_CHUNKS = 128
_CHUNK_HEADER = 12  # magic (2), message id (8), sequence number (1), count (1)
_FIELD_NAME = re.compile(r"^[\w.\-]+$")
# RFC 5424 severities for log.level (Python's and ECS's usual names).
_SEVERITY = {"emergency": 0, "emerg": 0, "alert": 1, "critical": 2, "crit": 2, "fatal": 2,
             "error": 3, "err": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6,
             "informational": 6, "debug": 7, "trace": 7}
_MAPPED = {"@timestamp", "message", "host.hostname", "log.level"}


def to_gelf(doc: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """The GELF 1.1 message of one ECS document."""
    flat: dict[str, Any] = {}
    _flatten(doc, "", flat)
    host = flat.get("host.hostname") or flat.get("host.name") or "unknown"
    short = flat.get("message")
    if not isinstance(short, str) or not short.strip():
        short = str(flat.get("event.action") or flat.get("event.kind") or "modelmon event")
    message: dict[str, Any] = {"version": "1.1", "host": str(host), "short_message": short}
    stamp = flat.get("@timestamp")
    if isinstance(stamp, str):
        try:
            message["timestamp"] = round(dt.datetime.fromisoformat(
                stamp.replace("Z", "+00:00")).timestamp(), 3)
        except ValueError:
            pass
    level = flat.get("log.level")
    if isinstance(level, str) and level.lower() in _SEVERITY:
        message["level"] = _SEVERITY[level.lower()]
    flat["event.id"] = event_id
    for name, value in flat.items():
        if name in _MAPPED or not _FIELD_NAME.match(name):
            continue
        key = "_" + name
        if key == "_id":  # reserved by GELF
            key = "__id"
        message[key] = value
    return message


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}{key}.", out)
        return
    name = prefix[:-1]
    if isinstance(value, bool | list | tuple):
        out[name] = orjson.dumps(value).decode()
    elif isinstance(value, int | float | str):
        out[name] = value
    elif value is not None:
        out[name] = str(value)


def _encoded(items: Sequence[Item], result: SendResult) -> list[tuple[Item, bytes]]:
    return [(item, orjson.dumps(to_gelf(doc, item.id))) for item, doc in documents(items, result)]


def udp_chunks(payload: bytes, chunk_size: int, message_id: bytes) -> list[bytes]:
    """``payload`` as one datagram, or as GELF chunks of at most ``chunk_size``
    bytes each; ValueError when it needs more than 128."""
    if len(payload) <= chunk_size:
        return [payload]
    body = chunk_size - _CHUNK_HEADER
    count = -(-len(payload) // body)
    if count > MAX_CHUNKS:
        raise ValueError(f"{len(payload)} bytes compressed need {count} chunks of {chunk_size}; "
                         f"GELF allows {MAX_CHUNKS}")
    return [CHUNK_MAGIC + message_id + bytes((n, count)) + payload[n * body:(n + 1) * body]
            for n in range(count)]


class GelfSink:
    """A Graylog GELF input (see the module docstring)."""

    name = "gelf"

    def __init__(self, *, transport: str = "tcp", host: str = "127.0.0.1",
                 port: int | None = None, url: str | None = None, timeout: float = 10.0,
                 chunk_size: int = 1420, compress: bool = True, bulk: bool = False,
                 tls: bool = False, ca_certs: str | None = None, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 verify_certs: bool = True, username: str | None = None,
                 password: str | None = None) -> None:
        if transport not in ("tcp", "udp", "http"):
            raise ValueError(f"transport: expected tcp, udp or http, got {transport!r}")
        if transport == "http":
            if not url:
                raise ValueError("url: required for transport http, e.g. "
                                 "http://graylog:12201/gelf")
        elif port is None:
            port = 12201
        if port is not None and (isinstance(port, bool) or not 0 < int(port) < 65536):
            raise ValueError(f"port: expected a port number (1-65535), got {port!r}")
        if isinstance(chunk_size, bool) or not 512 <= int(chunk_size) <= 65000:
            raise ValueError(f"chunk_size: expected 512-65000 bytes (1420 on a WAN, 8154 on "
                             f"a LAN), got {chunk_size!r}")
        self.transport, self.host, self.port = transport, host, int(port or 0)
        self.timeout, self.chunk_size, self.compress = timeout, int(chunk_size), compress
        self.bulk = bulk
        ca, cert, key = tls_files(ca_certs=ca_certs, ca_file=ca_file, cert_file=cert_file,
                                  key_file=key_file)
        if transport == "tcp" and not tls and (ca or cert):
            raise ValueError("tls: set tls: true to use ca_file/ca_certs/cert_file")
        if transport == "udp" and (tls or ca or cert):
            raise ValueError("tls: GELF over UDP has no TLS; use transport tcp or http")
        self._context = (client_tls_context(ca_file=ca, cert_file=cert, key_file=key,
                                            verify_certs=verify_certs)
                         if transport == "tcp" and tls else None)
        self._sock: socket.socket | None = None
        self._session: requests.Session | None = None
        if transport == "http":
            assert url is not None
            self.url, url_user, url_password = split_userinfo(url)
            if url_user is not None and username is None:
                username, password = url_user, url_password
            self._session = requests.Session()
            if username is not None:
                self._session.auth = (username, password or "")
            self._verify: str | bool = ca if ca else verify_certs
            self._cert: str | tuple[str, str] | None = (
                ((cert, key) if key else cert) if cert else None)

    def send(self, items: Sequence[Item]) -> SendResult:
        result = SendResult()
        messages = _encoded(items, result)
        if self.transport == "http":
            sent = self._send_http(messages)
        elif self.transport == "udp":
            sent = self._send_udp(messages)
        else:
            sent = self._send_tcp(messages)
        result.merge(sent)
        return result

    # -- tcp ----------------------------------------------------------------------

    def _send_tcp(self, messages: list[tuple[Item, bytes]]) -> SendResult:
        data = b"".join(body + b"\0" for _, body in messages)
        try:
            if self._sock is None:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                if self._context is not None:
                    try:
                        sock = self._context.wrap_socket(sock, server_hostname=self.host)
                        # A TLS 1.3 server refuses a client certificate after the
                        # handshake: wait for its verdict before counting bytes as sent.
                        await_tls13_verdict(sock, min(self.timeout, 1.0))
                    except BaseException:
                        sock.close()
                        raise
                self._sock = sock
            self._sock.sendall(data)
        except OSError as exc:
            log.debug("gelf tcp %s:%s: %s", self.host, self.port, exc)
            self.close()
            return SendResult.all_retry([item for item, _ in messages], "connection_error")
        return SendResult(delivered=[item.seq for item, _ in messages])

    # -- udp ----------------------------------------------------------------------

    def _send_udp(self, messages: list[tuple[Item, bytes]]) -> SendResult:
        result = SendResult()
        try:
            if self._sock is None:
                family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
                self._sock = socket.socket(family[0], socket.SOCK_DGRAM)
                self._sock.connect(family[4])
        except OSError as exc:
            log.debug("gelf udp %s:%s: %s", self.host, self.port, exc)
            self.close()
            return SendResult.all_retry([item for item, _ in messages], "connection_error")
        for index, (item, body) in enumerate(messages):
            payload = gzip.compress(body, compresslevel=6, mtime=0) if self.compress else body
            # The same event always gets the same message id: a resent chunk
            # joins its own message, never another's.
            message_id = hashlib.blake2b(item.id.encode(), digest_size=8).digest()
            try:
                chunks = udp_chunks(payload, self.chunk_size, message_id)
            except ValueError as exc:
                result.add_dead(f"too large for GELF UDP: {exc}", item.seq)
                continue
            try:
                for chunk in chunks:
                    self._sock.send(chunk)
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier datagram's ICMP
                log.debug("gelf udp %s:%s: %s", self.host, self.port, exc)
                result.retry += [i.seq for i, _ in messages[index:]]
                result.result = "connection_error"
                self.close()
                return result
            result.delivered.append(item.seq)
        return result

    # -- http ---------------------------------------------------------------------

    def _post(self, body: bytes) -> requests.Response:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if self.compress:
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return self._session.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                  verify=self._verify, cert=self._cert)

    def _send_http(self, messages: list[tuple[Item, bytes]]) -> SendResult:
        if self.bulk:
            return self._post_answered(messages)
        result = SendResult()
        for index, message in enumerate(messages):
            answer = self._post_answered([message])
            result.merge(answer)
            if answer.retry:  # the rest waits with it, in order
                result.retry += [item.seq for item, _ in messages[index + 1:]]
                return result
        return result

    def _post_answered(self, messages: list[tuple[Item, bytes]]) -> SendResult:
        """One request with ``messages`` (newline-separated), its answer classified;
        a refused bulk request is split to find the message it is about."""
        items = [item for item, _ in messages]
        if not items:
            return SendResult()
        try:
            resp = self._post(b"\n".join(body for _, body in messages))
        except requests.RequestException as exc:
            log.debug("gelf http %s: %s", self.url, exc)
            return SendResult.all_retry(items, "connection_error")
        status = resp.status_code
        if 200 <= status < 300:
            return SendResult(delivered=[i.seq for i in items])
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 429 or status >= 500 or status in (401, 403, 404):
            return SendResult.all_retry(items, "throttled" if status == 429 else "error",
                                        retry_after)
        result = SendResult(result="bad_request")
        if len(messages) > 1:
            half = len(messages) // 2
            result.merge(self._post_answered(messages[:half]))
            result.merge(self._post_answered(messages[half:]))
            return result
        result.add_dead(f"{status} {resp.text[:200]}", items[0].seq)
        return result

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        if self._session is not None:
            self._session.close()
