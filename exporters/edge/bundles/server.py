"""Publishing bundles over HTTP with strong ETags (``modelmon edge bundle serve``).

A directory of ``<group>.tar.gz`` files, one per device group, served at
``/<group>.tar.gz``. The ETag is the file's sha256, so a device's
``If-None-Match`` gets ``304 Not Modified`` until the file changes, whatever
its timestamp says. Replace a file atomically (write, then rename) to
publish a new bundle. Any static server or object store with ETags (nginx,
S3, GCS) works as well; this one needs nothing but modelmon.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_NAME = re.compile(r"/([A-Za-z0-9][A-Za-z0-9_.-]*\.tar\.gz)")


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 ``If-None-Match``: a list of (possibly weak) tags, or ``*``."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class _Files:
    """File bodies and their ETags, read again only when size or mtime change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int], bytes, str]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[bytes, str] | None:
        path = self.directory / name
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                return cached[1], cached[2]
            body = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        with self._lock:
            self._cache[name] = (key, body, etag)
        return body, etag


def bundle_app(directory: Path) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the bundles of ``directory``."""
    files = _Files(directory)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        match = _NAME.fullmatch(environ.get("PATH_INFO", ""))
        found = files.get(match.group(1)) if match else None
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Type", "text/plain")])
            return [b"bundles are read with GET\n"]
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such bundle; bundles are served as /<group>.tar.gz\n"]
        body, etag = found
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if etag_matches(environ.get("HTTP_IF_NONE_MATCH", ""), etag):
            start_response("304 Not Modified", headers)
            return []
        start_response("200 OK", [*headers, ("Content-Type", "application/gzip"),
                                  ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]

    return app
