"""A Prometheus remote_write 1.0 client: protobuf, snappy, and what to do with
each answer.

The client sends one request and classifies the answer; retrying, backoff and
spool bookkeeping belong to the delivery worker (see ``sender``). The
classification is the remote_write 1.0 spec's:

* 2xx: accepted.
* 5xx, 429 and connection errors: ``retry``, whatever the body says (the spec:
  a sender MUST retry 5xx). Prometheus 2.42 answers a sample older than its
  out-of-order window with a 500; what ends those retries is an age bound
  (``max_retry_duration``, the spool's ``max_age``), never the message.
* 401 and 403: a credential fault, not a bad batch (``unauthorized``): the
  samples are held, never dropped, and nothing more is sent (``held``, no
  request) until the credentials change (a rotated file, a reloaded config,
  a refreshed token); logged once with the field to fix (``auth``).
* any other 4xx: never retried (the spec: MUST NOT), the batch is dropped and
  counted by reason: ``too_old``, ``out_of_order`` or ``duplicate`` when the
  message says so (``rejected``), else ``http_<status>`` (``dropped``).
"""

from __future__ import annotations

import http.client
import logging
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cramjam

from modelmon import __version__

from .auth import Auth, AuthRequest, CredentialsRefused, CredentialsUnavailable, RequestAuth
from .http_post import KeepAlivePost

__all__ = ["TLS", "Auth", "RemoteWriteClient", "RemoteWriteResult", "classify_rejection",
           "compress", "decompress", "reserved_header", "ssl_context", "without_userinfo"]
log = logging.getLogger(__name__)

Outcome = Literal["success", "retry", "rejected", "dropped", "unauthorized", "held"]

# Substrings of receiver error messages that mean "this sample is too old or
# already there": prometheus/tsdb/storage errors, Mimir and Cortex error ids.
_REJECTIONS: tuple[tuple[str, str], ...] = (
    ("out of bounds", "too_old"),
    ("too old", "too_old"),
    ("too-old", "too_old"),
    ("out of order", "out_of_order"),
    ("out-of-order", "out_of_order"),
    ("duplicate sample", "duplicate"),
    ("duplicate-sample", "duplicate"),
)


# Headers remote_write.headers cannot set, and why (Prometheus refuses the same
# set): the protocol's own, HTTP's framing, and credentials, which have
# settings of their own that keep them out of logs and reprs.
_PROTOCOL = "set by modelmon as remote_write requires"
_FRAMING = "managed by the HTTP client"
_CREDENTIALS = "use basic_auth or authorization, which keep the secret out of logs"
RESERVED_HEADERS: dict[str, str] = {
    **dict.fromkeys(("Content-Encoding", "Content-Type", "User-Agent",
                     "X-Prometheus-Remote-Write-Version"), _PROTOCOL),
    **dict.fromkeys(("Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
                     "Accept-Encoding"), _FRAMING),
    **dict.fromkeys(("Authorization", "Proxy-Authorization"), _CREDENTIALS),
}
_RESERVED = {name.lower(): why for name, why in RESERVED_HEADERS.items()}


def reserved_header(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(name, why) of the first of ``headers`` that cannot be set (any case), or None."""
    for name in headers:
        why = _RESERVED.get(str(name).strip().lower())
        if why is not None:
            return str(name), why
    return None


@dataclass(frozen=True)
class RemoteWriteResult:
    """The receiver's answer to one request, classified (the delivery worker's
    ``SendResult`` is made from it by ``sender.RemoteWriteDestination``)."""

    outcome: Outcome
    reason: str  # "" on success; else a short counter label such as "too_old", "http_503"
    status: int | None
    duration: float
    message: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class TLS:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False


def classify_rejection(message: str) -> str | None:
    """The drop reason when ``message`` says the samples are too old or already stored."""
    lowered = message.lower()
    for needle, reason in _REJECTIONS:
        if needle in lowered:
            return reason
    return None


def compress(write_request: bytes) -> bytes:
    """Snappy block format, as remote_write 1.0 requires (not the framed format)."""
    return bytes(cramjam.snappy.compress_raw(write_request))


def decompress(body: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(body))


class RemoteWriteClient:
    """Sends WriteRequest bodies to one receiver URL over one kept-alive connection.

    Built on the standard library's ``http.client`` rather than ``requests``:
    the agent runs on small devices and this keeps ~5 MB out of its RSS.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        auth: RequestAuth | None = None,
        tls: TLS | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"remote_write url: expected http(s)://host[:port]/path, got {url!r}")
        self.url = without_userinfo(url)  # what logs and status show
        self.timeout = timeout
        self._auth: RequestAuth = auth or Auth()
        bad = reserved_header(headers or {})
        if bad is not None:
            raise ValueError(f"headers.{bad[0]}: {bad[1]}; remove it")
        self._headers = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"modelmon-edge/{__version__}",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            **(headers or {}),
        }
        if (parsed.username is not None and isinstance(self._auth, Auth)
                and self._auth.username is None):
            self._auth = Auth(username=urllib.parse.unquote(parsed.username),
                              password=urllib.parse.unquote(parsed.password or ""))
        self._http = KeepAlivePost(url, timeout, ssl_context(tls or TLS())
                                   if parsed.scheme == "https" else None)
        # While the receiver refuses the credentials: their fingerprint, and why.
        self._held: bytes | None = None
        self._held_message = ""

    def send(self, write_request: bytes) -> RemoteWriteResult:
        """POST one uncompressed, serialized WriteRequest; never raises for HTTP or I/O errors."""
        body = compress(write_request)
        start = time.perf_counter()
        if self._held is not None:
            if self._auth.fingerprint() == self._held:
                return RemoteWriteResult("held", "credentials", None, 0.0, self._held_message)
            log.warning("remote_write to %s: the credentials changed; sending the held samples",
                        self.url)
            self._held = None
        request = AuthRequest("POST", self.url, dict(self._headers), body)
        try:
            self._auth.authorize(request)
        except CredentialsRefused as exc:
            return self._hold(None, str(exc), time.perf_counter() - start)
        except (CredentialsUnavailable, OSError) as exc:
            return RemoteWriteResult("retry", "credentials", None, time.perf_counter() - start,
                                     str(exc))
        try:
            status, message, retry_after = self._post(body, request.headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a broken keep-alive connection is reopened next time
            return RemoteWriteResult("retry", "connection", None, time.perf_counter() - start,
                              f"{type(exc).__name__}: {exc}")
        duration = time.perf_counter() - start
        if 200 <= status < 300:
            return RemoteWriteResult("success", "", status, duration)
        if status == 429 or status >= 500:
            return RemoteWriteResult("retry", f"http_{status}", status, duration, message,
                                     _retry_after(retry_after))
        if status in (401, 403):
            if self._auth.renew():  # e.g. an OAuth2 token revoked early: fetch another
                return RemoteWriteResult("unauthorized", f"http_{status}", status, duration,
                                         message)
            return self._hold(status, message, duration)
        rejection = classify_rejection(message) if status >= 400 else None
        if rejection is not None:
            return RemoteWriteResult("rejected", rejection, status, duration, message)
        return RemoteWriteResult("dropped", f"http_{status}", status, duration, message)

    def _hold(self, status: int | None, message: str, duration: float) -> RemoteWriteResult:
        """Send nothing more until the credentials change; say so once, with the fix."""
        self._held = self._auth.fingerprint()
        field_name = self._auth.field_name
        answer = f"HTTP {status}: {message[:200]}" if status is not None else message[:300]
        self._held_message = f"credentials refused ({answer}); fix {field_name}"
        log.error("remote_write to %s refused the credentials (%s). The samples are kept in "
                  "the spool and nothing is sent until the credentials change: fix %s "
                  "(a credentials file is read again at each try; else reload or restart "
                  "the agent).", self.url, answer, field_name)
        return RemoteWriteResult("unauthorized", f"http_{status}" if status else "credentials",
                                 status, duration, self._held_message)

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str | None]:
        return self._http.post(body, headers)

    def close(self) -> None:
        self._http.close()


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``, fit to be logged or shown."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is None and parsed.password is None:
        return url
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def ssl_context(tls: TLS) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None,
                                password=_no_passphrase)
    return context


def _no_passphrase() -> str:
    # Without a callback OpenSSL asks for the passphrase on the terminal: a
    # daemon would hang at start. An encrypted key is an error instead.
    raise ValueError("the key is encrypted; give an unencrypted PEM key")


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form; an HTTP date is rare from metric receivers.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
