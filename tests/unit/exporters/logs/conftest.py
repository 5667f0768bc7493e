"""A shipper to a JSON-lines file: hermetic, and the events can be read back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper


class FileShipped:
    def __init__(self, shipper: LogShipper, path: Path) -> None:
        self.shipper = shipper
        self.path = path

    def events(self) -> list[dict[str, Any]]:
        assert self.shipper.flush(10)
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.fixture
def file_shipper(tmp_path: Path) -> Iterator[Callable[..., FileShipped]]:
    made: list[LogShipper] = []

    def make(**kw: Any) -> FileShipped:
        path = tmp_path / "events.jsonl"
        options: dict[str, Any] = {"sink": "file", "path": path, "spool_dir": tmp_path / "spool",
                                   "registry": CollectorRegistry(), "service_name": "svc"}
        options.update(kw)
        shipper = LogShipper(**options)
        made.append(shipper)
        return FileShipped(shipper, path)

    yield make
    for shipper in made:
        shipper.close(timeout=1)
