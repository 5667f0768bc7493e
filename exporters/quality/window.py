"""A sliding window of bin counts, kept as a ring of per-chunk histograms.

The window is split into ``chunks`` histograms. New rows are counted into the
newest chunk; when it is full (count window) or its time slot is over (time
window) the oldest chunk is zeroed and reused. Adding rows therefore costs
O(rows x features) to bin plus O(bins) per chunk touched, never O(window),
and reading the window sums ``chunks`` histograms: O(chunks x bins).

Count window of N rows: chunk size C = ceil(N / chunks); the window holds the
newest rows, between N - C + 1 and N of them once full (C = N / chunks; the
newest chunk fills while the oldest ones still count fully).
Time window of T seconds: chunk length T / chunks; the window holds the rows
of the current slot and of the ``chunks - 1`` slots before it, i.e. the rows
of the last T - T/chunks to T seconds.

Not thread-safe: the owner serializes calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

DEFAULT_CHUNKS = 10
_PENDING_FLUSH = 8192


class SlidingCounts:
    """Per-bin counts over a count- or time-based sliding window."""

    def __init__(
        self,
        bins: int,
        *,
        rows: int | None = None,
        seconds: float | None = None,
        chunks: int = DEFAULT_CHUNKS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (rows is None) == (seconds is None):
            raise ValueError("window: give either a number of rows or a duration, not both")
        if chunks < 1:
            raise ValueError(f"window_chunks: expected at least 1, got {chunks}")
        if rows is not None and rows < chunks:
            raise ValueError(f"window: {rows} rows is fewer than window_chunks={chunks}")
        self.bins = bins
        self.chunks = chunks
        # The extra last column collects "no bin" (missing values) and is ignored.
        self._ring = np.zeros((chunks, bins + 1), dtype=np.int64)
        self._rows = [0] * chunks  # a list: cheaper than numpy for one-row updates
        self._current = 0
        self._clock = clock
        self._capacity = math.ceil(rows / chunks) if rows is not None else 0
        self._slot_seconds = seconds / chunks if seconds is not None else 0.0
        self._slot = self._slot_now() if seconds is not None else 0
        self._pending: list[int] = []
        self.trash = bins  # the index that means "no bin"

    @property
    def time_based(self) -> bool:
        return self._slot_seconds > 0

    # -- adding ---------------------------------------------------------------

    def add_batch(self, index: np.ndarray) -> np.ndarray:
        """Count rows x features bin indices (``trash`` where there is no bin).

        Returns the counts per bin of the whole batch (``bins + 1`` long, the
        last is ``trash``), so callers that also need them bin only once.
        """
        n = int(index.shape[0])
        if n == 0:
            return np.zeros(self.bins + 1, dtype=np.int64)
        if self.time_based:
            self._advance_time()
            counts = np.bincount(index.ravel(), minlength=self.bins + 1)
            self._ring[self._current] += counts
            self._rows[self._current] += n
            return counts
        start = 0
        window = self._capacity * self.chunks
        total = np.zeros(self.bins + 1, dtype=np.int64)
        if n > window:
            # Older rows of a batch longer than the window would be evicted at once.
            self._roll_to_empty()
            start = n - window
            total += np.bincount(index[:start].ravel(), minlength=self.bins + 1)
        while start < n:
            # Roll before adding, not after filling, so a full window holds N rows.
            if self._rows[self._current] >= self._capacity:
                self._roll()
            room = self._capacity - self._rows[self._current]
            take = min(room, n - start)
            block = index[start : start + take]
            counts = np.bincount(block.ravel(), minlength=self.bins + 1)
            self._ring[self._current] += counts
            total += counts
            self._rows[self._current] += take
            start += take
        return total

    def add_row(self, bins: list[int]) -> None:
        """Count one row given as the list of its bin indices (missing values left out)."""
        if self.time_based:
            if self._slot_now() != self._slot:
                self._advance_time()
            self._pending.extend(bins)
            self._rows[self._current] += 1
            if len(self._pending) > _PENDING_FLUSH:
                self._flush()
            return
        if self._rows[self._current] >= self._capacity:
            self._roll()
        self._pending.extend(bins)
        self._rows[self._current] += 1
        if len(self._pending) > _PENDING_FLUSH:
            self._flush()

    # -- reading ----------------------------------------------------------------

    def snapshot(self) -> tuple[np.ndarray, int]:
        """(counts per bin, rows) of the whole window."""
        if self.time_based:
            self._advance_time()
        self._flush()
        return self._ring[:, : self.bins].sum(axis=0), sum(self._rows)

    # -- internals -------------------------------------------------------------

    def _slot_now(self) -> int:
        return int(self._clock() // self._slot_seconds)

    def _flush(self) -> None:
        if self._pending:
            self._ring[self._current] += np.bincount(
                np.asarray(self._pending, dtype=np.int64), minlength=self.bins + 1
            )
            self._pending.clear()

    def _roll(self) -> None:
        self._flush()
        self._current = (self._current + 1) % self.chunks
        self._ring[self._current] = 0
        self._rows[self._current] = 0

    def _roll_to_empty(self) -> None:
        self._pending.clear()
        self._ring[:] = 0
        self._rows = [0] * self.chunks
        self._current = 0

    def _advance_time(self) -> None:
        slot = self._slot_now()
        if slot == self._slot:
            return
        self._flush()
        steps = min(max(slot - self._slot, 0), self.chunks)
        for _ in range(steps):
            self._current = (self._current + 1) % self.chunks
            self._ring[self._current] = 0
            self._rows[self._current] = 0
        self._slot = slot
