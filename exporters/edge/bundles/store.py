"""The bundles a device keeps on disk: the applied one and the one before it.

Layout under the agent's state directory::

    bundles/state.json           {"applied": entry, "previous": entry, "confirmed_at": time};
                                 replaced atomically
    bundles/<sha256>.tar.gz      the bundle files state.json names (at most two)
    bundles/incoming/*.tar.gz    bundles imported by hand, picked up by the running agent

A bundle file is written and fsynced before ``state.json`` names it, and
``state.json`` is replaced by a rename: a crash leaves either the old or the
new state, never a half of one. A device only writes a bundle here once every
check passed, so ``applied`` is the last known good; ``previous`` is the
fallback when the applied file is damaged on disk.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StoredBundle:
    sha256: str
    version: str
    source: str  # the URL it was pulled from, or "import"
    etag: str | None
    applied_at: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class BundleStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.incoming = directory / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state_file = directory / "state.json"

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # damaged: the bundle files are still there
            return {}
        return state if isinstance(state, dict) else {}

    def entries(self) -> list[StoredBundle]:
        """The applied bundle, then the previous one (the fallbacks, in order)."""
        out = []
        for key in ("applied", "previous"):
            raw = self._state().get(key)
            if not isinstance(raw, dict):
                continue
            try:
                out.append(StoredBundle(**raw))
            except TypeError:  # written by another version: not a fallback
                continue
        return out

    def confirmed_at(self) -> float | None:
        """When the device last confirmed it runs what its bundle URL serves."""
        value = self._state().get("confirmed_at")
        return float(value) if isinstance(value, int | float) else None

    def confirm(self, when: float) -> None:
        state = self._state()
        state["confirmed_at"] = when
        write_atomic(self._state_file, json.dumps(state, indent=2).encode())

    def read(self, entry: StoredBundle) -> bytes:
        return (self.directory / f"{entry.sha256}.tar.gz").read_bytes()

    def save(self, data: bytes, sha256: str, version: str, source: str,
             etag: str | None) -> StoredBundle:
        """Store ``data`` as the applied bundle; the applied one becomes previous."""
        entry = StoredBundle(sha256, version, source, etag, time.time())
        path = self.directory / f"{sha256}.tar.gz"
        if not path.exists():
            write_atomic(path, data)
        entries = self.entries()
        previous = next((e for e in entries if e.sha256 != sha256), None)
        state = {**self._state(), "applied": asdict(entry),
                 "previous": asdict(previous) if previous else None}
        write_atomic(self._state_file, json.dumps(state, indent=2).encode())
        keep = {f"{sha256}.tar.gz"} | ({f"{previous.sha256}.tar.gz"} if previous else set())
        for old in self.directory.glob("*.tar.gz"):
            if old.name not in keep:
                old.unlink(missing_ok=True)
        return entry

    def set_etag(self, entry: StoredBundle, etag: str | None, source: str) -> StoredBundle:
        """The same bundle now served by ``source`` under ``etag`` (no new file)."""
        state = self._state()
        updated = StoredBundle(entry.sha256, entry.version, source, etag, entry.applied_at)
        state["applied"] = asdict(updated)
        write_atomic(self._state_file, json.dumps(state, indent=2).encode())
        return updated
