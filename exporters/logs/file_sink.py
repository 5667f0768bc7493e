"""The JSON-lines file sink: the embedded default when no server is configured.

One JSON document per line, appended with one ``write(2)`` per batch, so
several processes can share the file. Each document carries ``event.id``.
The file is rotated to ``<path>.1`` when it exceeds ``max_bytes`` (one
generation kept; Filebeat or a log collector can tail it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from modelmon.exporters.logs.sinks import Item, SendResult, with_event_ids


class FileSink:
    name = "file"

    def __init__(self, *, path: str | Path, max_bytes: int = 256 * 1024 * 1024,
                 fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._fsync = fsync
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def send(self, items: Sequence[Item]) -> SendResult:
        result = SendResult()
        docs = with_event_ids(items, result)
        data = b"".join(doc + b"\n" for _, doc in docs)
        try:
            if os.fstat(self._fd).st_size + len(data) > self.max_bytes:
                self._rotate()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError:
            return SendResult.all_retry(items, "error")
        result.delivered = [item.seq for item, _ in docs]
        return result

    def _rotate(self) -> None:
        os.close(self._fd)
        try:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)
