"""Bounded waits for integration tests: poll until a probe gives something."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait(what: str, probe: Callable[[], T | None], timeout: float = 20.0,
         interval: float = 0.2) -> T:
    """The first truthy value of ``probe()`` within ``timeout`` seconds; else an
    AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
