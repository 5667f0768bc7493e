"""Publishing bundles over HTTP with strong ETags (``modelmon edge bundle serve``).

A directory of ``<group>.tar.gz`` files, one per device group, served at
``/<group>.tar.gz``. The ETag is the file's sha256, so a device's
``If-None-Match`` gets ``304 Not Modified`` until the file changes, whatever
its timestamp says. Replace a file atomically (write, then rename) to
publish a new bundle. Any static server or object store with ETags (nginx,
S3, GCS) works as well; this one needs nothing but modelmon, and ``modelmon
serve`` answers the same way at ``/bundles/<group>.tar.gz`` when its config
has ``bundles: {dir: ...}`` (behind its TLS and basic auth).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def bundles_dir(section: object, base_dir: Path | None) -> Path:
    """The directory of ``modelmon serve``'s ``bundles: {dir: ...}`` section, checked."""
    from modelmon.config import ConfigError

    if not isinstance(section, dict) or set(section) != {"dir"} or \
            not isinstance(section["dir"], str) or not section["dir"]:
        raise ConfigError("bundles: expected {dir: <directory of <group>.tar.gz bundles>}, got "
                          f"{section!r}")
    path = Path(section["dir"]).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise ConfigError(f"bundles.dir: {path} is not a directory; create it and put the "
                          "bundles of 'modelmon edge bundle build' there as <group>.tar.gz")
    return path


_NAME = re.compile(r"/([A-Za-z0-9][A-Za-z0-9_.-]*\.tar\.gz)")


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 ``If-None-Match``: a list of (possibly weak) tags, or ``*``."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class BundleFiles:
    """The bundles of a directory, answered as HTTP: bodies and their ETags are read
    again only when a file's size or mtime change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int], bytes, str]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[bytes, str] | None:
        if not _NAME.fullmatch(f"/{name}"):
            return None
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

    def respond(self, name: str, if_none_match: str, method: str = "GET"
                ) -> tuple[str, list[tuple[str, str]], bytes]:
        """(status line, headers, body) of a GET or HEAD of bundle ``name``."""
        if method not in ("GET", "HEAD"):
            return ("405 Method Not Allowed",
                    [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")],
                    b"bundles are read with GET\n")
        found = self.get(name)
        if found is None:
            return ("404 Not Found", [("Content-Type", "text/plain")],
                    b"no such bundle; bundles are served as <group>.tar.gz\n")
        body, etag = found
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if etag_matches(if_none_match, etag):
            return "304 Not Modified", headers, b""
        return ("200 OK", [*headers, ("Content-Type", "application/gzip"),
                           ("Content-Length", str(len(body)))],
                b"" if method == "HEAD" else body)


def bundle_app(directory: Path) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the bundles of ``directory`` at ``/<group>.tar.gz``."""
    files = BundleFiles(directory)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, headers, body = files.respond(
            environ.get("PATH_INFO", "").removeprefix("/"),
            environ.get("HTTP_IF_NONE_MATCH", ""), environ.get("REQUEST_METHOD", "GET"))
        start_response(status, headers)
        return [body] if body else []

    return app
