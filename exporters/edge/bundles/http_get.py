"""The bundle URL's conditional GET, with the standard library's ``urllib``.

The agent's other senders use ``http.client`` (``exporters/edge/http_post.py``)
and this one ``urllib.request``, which ``prometheus_client`` loads anyway: pulling
with ``requests`` cost a device about 5 MiB of RSS (BENCHMARKS.md, the bundle
rows) for nothing the standard library lacks here:

- proxies from the environment (``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``,
  ``urllib.request.ProxyHandler``), as every HTTP client on the device honours;
- redirects (301, 302, 303, 307, 308: object stores and CDNs answer with them),
  at most 10, to ``http``/``https`` only, and **without the credentials** when the
  redirect leaves the bundle URL's origin (scheme, host, port) — urllib would
  otherwise forward ``Authorization`` to any host a server names, which
  ``requests`` does not do either;
- TLS with the section's CA, client certificate and ``insecure_skip_verify``
  (the same ``ssl_context`` as remote_write);
- a bounded read: an answer larger than a bundle is refused as it is read.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

from modelmon.exporters.edge.remote_write import TLS, ssl_context


class AnswerTooLarge(Exception):
    """The answer is larger than any bundle may be."""


@dataclass(frozen=True)
class Answer:
    status: int
    etag: str | None
    body: bytes  # only for a 200


# What a GET of the bundle URL may raise when no usable answer came.
# ValueError: a URL urllib cannot open, or an encrypted client key (ssl_context).
FETCH_ERRORS = (OSError, ValueError, http.client.HTTPException, AnswerTooLarge)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to {newurl!r} is not "
                                         "http or https", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")  # credentials stay with their origin
        return new


class BundleFetcher:
    """Conditional GETs of one bundle URL; a new connection each time (a pull
    every few minutes keeps nothing open between them)."""

    def __init__(self, tls: TLS, timeout: float, max_bytes: int) -> None:
        handlers: list[urllib.request.BaseHandler] = [_Redirects()]
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(tls)))
        # build_opener adds ProxyHandler(), which reads the *_proxy variables.
        self._opener = urllib.request.build_opener(*handlers)
        self.timeout = timeout
        self.max_bytes = max_bytes

    def get(self, url: str, headers: dict[str, str]) -> Answer:
        """The answer to a GET of url; raises one of FETCH_ERRORS when none came."""
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:  # 304 and every status >= 300 not followed
            with error:
                return Answer(error.code, error.headers.get("ETag") if error.headers else None,
                              b"")
        with response:
            body = response.read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                raise AnswerTooLarge(f"the answer of {url} is larger than a bundle "
                                     f"({self.max_bytes} bytes)")
            return Answer(response.status, response.headers.get("ETag"), body)
