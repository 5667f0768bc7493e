"""The HTTP side of the web config: basic auth, rate limit and response headers.

bcrypt is slow on purpose (~75 ms at cost 10, ~300 ms at cost 12), which makes
every wrong password a CPU cost the server pays. As exporter-toolkit does,
verified credentials are cached, one bcrypt runs at a time per process, and
an unknown user costs the same bcrypt as a known one (no user enumeration by
timing). Beyond exporter-toolkit, at most ``max_waiting`` requests queue for
bcrypt, which runs on one thread of lower CPU priority: a password-guessing
client gets 429 instead of taking every thread, and its bcrypt work yields
the CPU to a scrape whose credentials are cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import bcrypt

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from modelmon.exporters.service.web_config import WebConfig

# bcrypt only reads the first 72 bytes; bcrypt>=5 refuses longer passwords.
_BCRYPT_MAX_PASSWORD = 72
_VERIFIED_CACHE = 64
_REFUSED_CACHE = 1024


def _bcrypt_cost(hashed: bytes) -> int:
    return int(hashed[4:6])


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes."""

    def __init__(self, users: Mapping[str, bytes], max_waiting: int = 2) -> None:
        self._users = dict(users)
        # The dummy for unknown users is the costliest configured hash, so an
        # unknown user costs what the dearest known one does.
        self._dummy = max(self._users.values(), key=_bcrypt_cost, default=b"")
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        # One thread does every bcrypt, at a lower CPU priority: the guesses
        # queue behind each other and yield the CPU to scrapes. Its thread
        # starts on first use, in the gunicorn worker.
        self._bcrypt = ThreadPoolExecutor(1, "modelmon-bcrypt", initializer=_lower_priority)
        self._waiting = 0
        self._max_waiting = max_waiting
        #: bcrypt comparisons run so far (what a guessing client costs).
        self.bcrypt_checks = 0

    def _checkpw(self, password: bytes, hashed: bytes) -> bool:
        return self._bcrypt.submit(bcrypt.checkpw, password, hashed).result()

    def check(self, header: str | None) -> bool | None:
        """True for valid credentials, False for invalid, None when too many
        requests already wait for bcrypt (answer 429)."""
        credentials = _parse(header)
        if credentials is None or not self._users:
            return False
        user, password = credentials
        hashed = self._users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self._dummy
        if len(password) > _BCRYPT_MAX_PASSWORD:
            return False
        key = hashlib.sha256(user.encode() + b"\0" + hashed + b"\0" + password).digest()
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
            if key in self._refused:
                return False
            if self._waiting >= self._max_waiting + 1:
                return None
            self._waiting += 1
            self.bcrypt_checks += 1
        try:
            ok = self._checkpw(password, hashed) and known
        finally:
            with self._lock:
                self._waiting -= 1
        with self._lock:
            cache, size = (self._verified, _VERIFIED_CACHE) if ok else (self._refused,
                                                                        _REFUSED_CACHE)
            cache[key] = None
            while len(cache) > size:
                cache.popitem(last=False)
        return ok


def _lower_priority() -> None:
    try:
        # On Linux a thread id is a task of its own: this nices only this thread.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass  # elsewhere the process would be niced: leave it


def _parse(header: str | None) -> tuple[str, bytes] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(header[6:], validate=True)
        user, sep, password = raw.partition(b":")
        return (user.decode(), password) if sep else None
    except (binascii.Error, ValueError):
        return None


class TokenBucket:
    """Go's rate.Limiter.Allow: ``burst`` tokens, one more every ``interval``."""

    def __init__(self, interval_seconds: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_seconds
        self._burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) / self._interval)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _plain(status: str, text: str, headers: list[tuple[str, str]],
           start_response: StartResponse) -> Iterable[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


class WebGuard:
    """WSGI middleware applying a WebConfig: rate limit, headers, basic auth.

    ``/healthz`` stays open without credentials (for probes), as documented.
    """

    def __init__(self, app: WSGIApplication, web: WebConfig) -> None:
        self._app = app
        self._web = web
        self._bucket = (TokenBucket(web.rate_limit.interval_seconds, web.rate_limit.burst)
                        if web.rate_limit else None)
        self._extra = list(web.headers.items())
        self._names = {name.lower() for name in web.headers}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse,
                 ) -> Iterable[bytes]:
        respond = start_response
        if self._extra:
            def respond(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                kept = [(k, v) for k, v in headers if k.lower() not in self._names]
                return start_response(status, kept + self._extra, *exc)

        if self._bucket is not None and not self._bucket.allow():
            return _plain("429 Too Many Requests", "Too Many Requests\n", [], respond)
        if not self._web.auth_enabled or environ.get("PATH_INFO") == "/healthz":
            return self._app(environ, respond)
        verdict = self._web.basic_auth.check(environ.get("HTTP_AUTHORIZATION"))
        if verdict is True:
            return self._app(environ, respond)
        if verdict is None:
            return _plain("429 Too Many Requests", "Too Many Requests: password checks busy\n",
                          [("Retry-After", "1")], respond)
        return _plain("401 Unauthorized", "Unauthorized\n",
                      [("WWW-Authenticate", 'Basic realm="modelmon"')], respond)
