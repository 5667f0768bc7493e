"""Where the GELF sink's end-to-end test ships: the loopback GELF input
(support.gelf_server) or a real Graylog named by the environment.

With ``GRAYLOG_GELF_URL`` (``tcp://host:12201``, ``tls://host:12201``,
``udp://host:12201``, ``http(s)://host:12201/gelf``) and ``GRAYLOG_API_URL``
(e.g. ``http://graylog:9000/api``, with ``GRAYLOG_API_TOKEN``) set, the case of
that transport ships to Graylog and counts arrivals through Graylog's search
API (``/search/universal/relative``): what was indexed, not what was sent.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import requests

from support.gelf_server import GelfInput, serve_http, serve_tcp, serve_udp

ENV_GELF_URL = "GRAYLOG_GELF_URL"
ENV_API_URL = "GRAYLOG_API_URL"
ENV_API_TOKEN = "GRAYLOG_API_TOKEN"


@dataclass
class LocalGelf:
    """The loopback GELF input of one transport."""

    transport: str
    options: dict[str, Any] = field(default_factory=dict)
    sink: GelfInput | None = None
    _stop: threading.Event | None = None
    _http: ThreadingHTTPServer | None = None
    kind: str = "loopback GELF input"

    def start(self) -> None:
        if self.transport == "http":
            self.sink, self._http = serve_http()
            self.options = {"transport": "http",
                            "url": f"http://127.0.0.1:{self._http.server_port}/gelf"}
        else:
            serve = serve_tcp if self.transport == "tcp" else serve_udp
            self.sink, port, self._stop = serve()
            self.options = {"transport": self.transport, "port": port}

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def arrivals(self, marker: str, spool_id: str, expected: int,
                 timeout: float = 10.0) -> Counter[str]:
        assert self.sink is not None
        self.sink.wait_for(expected, timeout)
        assert self.sink.rejected == [], self.sink.rejected[:3]
        return Counter(self.sink.ids())


@dataclass
class Graylog:
    """A real Graylog: a GELF input to ship to, the search API to read back."""

    transport: str
    options: dict[str, Any]
    api_url: str
    token: str | None
    kind: str = "Graylog from GRAYLOG_GELF_URL"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def search(self, query: str) -> list[dict[str, Any]]:
        r = requests.get(
            f"{self.api_url.rstrip('/')}/search/universal/relative",
            params={"query": query, "range": 3600, "limit": 10_000, "decorate": "false"},
            headers={"Accept": "application/json"},
            auth=(self.token, "token") if self.token else None, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"Graylog search: HTTP {r.status_code} {r.text[:300]} "
                               f"(is {ENV_API_URL} the API base, e.g. http://graylog:9000/api, "
                               f"and {ENV_API_TOKEN} a token with search rights?)")
        return [m["message"] for m in r.json().get("messages", [])]

    def count(self, marker: str, event_id: re.Pattern[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for message in self.search(f'"{marker}"'):
            counts.update(v for v in message.values() if isinstance(v, str) and event_id.match(v))
        return counts

    def arrivals(self, marker: str, spool_id: str, expected: int,
                 timeout: float = 120.0) -> Counter[str]:
        """Event ids of the indexed messages containing ``marker``, counted. The
        id is found by value: Graylog may keep ``event.id`` or rename it."""
        event_id = re.compile(rf"^{re.escape(spool_id)}-\d+$")
        deadline = time.monotonic() + timeout
        counts = self.count(marker, event_id)
        while sum(counts.values()) < expected and time.monotonic() < deadline:
            time.sleep(2.0)  # Graylog indexes asynchronously
            counts = self.count(marker, event_id)
        time.sleep(5.0)  # room for a late duplicate to be indexed too
        return self.count(marker, event_id)


def graylog_from_environment() -> Graylog | None:
    """The Graylog of ``GRAYLOG_GELF_URL``/``GRAYLOG_API_URL``; None when unset;
    ValueError naming the variable when half set or malformed."""
    gelf_url = os.environ.get(ENV_GELF_URL)
    if not gelf_url:
        return None
    api_url = os.environ.get(ENV_API_URL)
    if not api_url:
        raise ValueError(f"{ENV_GELF_URL} is set but {ENV_API_URL} is not: set it to Graylog's "
                         "API base, e.g. http://graylog:9000/api (and GRAYLOG_API_TOKEN)")
    parsed = urllib.parse.urlsplit(gelf_url)
    if parsed.scheme in ("http", "https"):
        options: dict[str, Any] = {"transport": "http", "url": gelf_url}
    elif parsed.scheme in ("tcp", "tls", "udp") and parsed.hostname:
        options = {"transport": "udp" if parsed.scheme == "udp" else "tcp",
                   "host": parsed.hostname, "port": parsed.port or 12201}
        if parsed.scheme == "tls":
            options["tls"] = True
    else:
        raise ValueError(f"{ENV_GELF_URL}: expected tcp://, tls://, udp:// or http(s)://"
                         f"host:port, got {gelf_url!r}")
    return Graylog(options["transport"], options, api_url, os.environ.get(ENV_API_TOKEN))
