"""POSTs to one URL over one kept-alive connection, with the standard library's
``http.client`` (the agent stays small): remote_write and the Alertmanager
notifier both send this way."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse

# An answer's body is read up to this much and kept (trimmed) for errors and status.
_MAX_ANSWER = 64 * 1024


class KeepAlivePost:
    def __init__(self, url: str, timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.timeout = timeout
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or ""
        self._port = parsed.port or (443 if self._https else 80)
        self._path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self._ssl = ssl_context if self._https else None
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str | None]:
        """(status, the answer's text trimmed to 1,000 characters, Retry-After); raises
        OSError or http.client.HTTPException when no answer came."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = (http.client.HTTPSConnection(self._host, self._port,
                                                          timeout=self.timeout, context=self._ssl)
                              if self._https else
                              http.client.HTTPConnection(self._host, self._port,
                                                         timeout=self.timeout))
            try:
                self._conn.request("POST", self._path, body=body, headers=headers)
                response = self._conn.getresponse()
                text = response.read(_MAX_ANSWER).decode("utf-8", "replace").strip()[:1000]
                if response.will_close:
                    self.close()
                return response.status, text, response.getheader("Retry-After")
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self.close()  # an idle keep-alive connection closed by the server: one fresh try
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
