"""Bounded label cardinality.

A label whose values come from outside (model names on /ingest, exception
types, class names) could create unbounded series and take Prometheus down.
Each (metric, label) pair accepts at most ``max_values`` distinct values; the
rest are reported as ``__other__`` and counted in
``modelmon_label_overflow_total{metric,label}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

OTHER = "__other__"


class LabelLimiter:
    def __init__(self, max_values: int, on_overflow: Callable[[str, str], None]) -> None:
        if max_values < 1:
            raise ValueError(f"max_label_values must be at least 1, got {max_values}")
        self.max_values = max_values
        self._on_overflow = on_overflow
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    def limit(self, metric: str, label: str, value: str) -> str:
        """``value`` if it is known or fits under the cap, else ``__other__``."""
        seen = self._seen.get((metric, label))
        # Fast path without the lock: set membership is atomic in CPython.
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault((metric, label), set())
            if value in seen:
                return value
            if len(seen) < self.max_values:
                seen.add(value)
                return value
        self._on_overflow(metric, label)
        return OTHER
