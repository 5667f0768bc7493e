"""Samples in memory, per series, in timestamp order.

A series is its sorted label set (``prompb.LabelSet``, ``__name__`` included).
Timestamps are integer milliseconds as in Prometheus's TSDB. The staleness
marker is the NaN with the bit pattern ``0x7ff0000000000002``: appended when a
series ends, it hides the series from instant selectors from that moment and
is skipped inside range selectors.

A full window is many samples (500 series over 1 h at 10 s: 180,000), so a
sample costs 16 bytes: its value in an ``array('d')`` (a float object and its
list slot were 32), its timestamp a list slot pointing at the one int object of
that timestamp in the window, shared by every series sampled then (an int per
sample was 40). Timestamps stay a list: ``bisect`` on a list compares the
stored ints in place, on an array it would box every probe (10x slower, and
selectors bisect every series).
"""

from __future__ import annotations

import bisect
import itertools
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from modelmon.exporters.edge.prompb import STALE_NAN_BITS, LabelSet

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
_UIDS = itertools.count()
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<Q")


def is_stale(value: float) -> bool:
    """True for the staleness marker only (not for other NaNs)."""
    return value != value and _BITS.unpack(_DOUBLE.pack(value))[0] == STALE_NAN_BITS


@dataclass
class SeriesSamples:
    """One series: parallel sequences of timestamps (ms) and values, sorted by time."""

    labels: LabelSet
    timestamps: list[int] = field(default_factory=list)
    values: array[float] = field(default_factory=lambda: array("d"))
    # Staleness markers held: with none, a range is a plain slice (no per-sample check).
    stale_markers: int = 0
    # Adjacent samples whose value goes down (-1: not known, count again when asked):
    # with none, no window of a counter holds a reset, and rate() skips looking.
    _decreases: int = 0

    def append(self, timestamp_ms: int, value: float) -> None:
        if value != value and is_stale(value):
            self.stale_markers += 1
        if self.timestamps and timestamp_ms <= self.timestamps[-1]:
            self._decreases = -1
            i = bisect.bisect_left(self.timestamps, timestamp_ms)
            if i < len(self.timestamps) and self.timestamps[i] == timestamp_ms:
                if is_stale(self.values[i]):
                    self.stale_markers -= 1
                self.values[i] = value  # same series and timestamp: idempotent
                return
            self.timestamps.insert(i, timestamp_ms)
            self.values.insert(i, value)
            return
        if self.values and value < self.values[-1] and self._decreases >= 0:
            self._decreases += 1
        self.timestamps.append(timestamp_ms)
        self.values.append(value)

    @property
    def decreases(self) -> int:
        """How many samples are lower than the one before them."""
        if self._decreases < 0:
            values = self.values
            self._decreases = sum(1 for a, b in zip(values, values[1:], strict=False) if b < a)
        return self._decreases

    def drop_before(self, timestamp_ms: int) -> None:
        i = bisect.bisect_left(self.timestamps, timestamp_ms)
        if i:
            if self.stale_markers:
                self.stale_markers -= sum(1 for v in self.values[:i] if is_stale(v))
            if self._decreases > 0:
                values = self.values
                dropped = zip(values[:i], values[1:i + 1], strict=False)
                self._decreases -= sum(1 for a, b in dropped if b < a)
            del self.timestamps[:i]
            del self.values[:i]


class MemoryStorage:
    """The evaluator's view of samples: series by label set.

    ``retain(min_ms)`` drops what no expression can look at any more (the
    agent keeps its window: the longest range + offset + 5 m lookback).
    """

    def __init__(self) -> None:
        self._series: dict[LabelSet, SeriesSamples] = {}
        self._by_name: dict[str, dict[LabelSet, SeriesSamples]] = {}
        # Label-set order per metric name (None: all), rebuilt when series come or go.
        self._ordered: dict[str | None, list[SeriesSamples]] = {}
        # Bumped whenever a series comes or goes: selectors cache their matches by
        # (uid, generation); uid, unlike id(), is never reused by another storage.
        self.generation = 0
        self.uid = next(_UIDS)
        # One int object per distinct timestamp in the window, shared by every series
        # sampled then (pruned by retain); a collection appends one after the other.
        self._times: dict[int, int] = {}
        self._times_pruned = 0
        self._last_ms = -1

    def append(self, labels: Iterable[tuple[str, str]], timestamp_ms: int, value: float) -> None:
        if timestamp_ms == self._last_ms:
            timestamp_ms = self._last_ms
        else:
            timestamp_ms = self._last_ms = self._times.setdefault(timestamp_ms, timestamp_ms)
        # A tuple equal to a stored key is that series (keys are canonical): the
        # evaluator appends its results, and the agent its collections, that way.
        series = self._series.get(labels) if type(labels) is tuple else None
        if series is not None:
            series.append(timestamp_ms, value)
            return
        key: LabelSet = tuple(sorted((n, v) for n, v in labels if v != ""))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = SeriesSamples(key)
            self._by_name.setdefault(dict(key).get("__name__", ""), {})[key] = series
            self._ordered.clear()
            self.generation += 1
        series.append(timestamp_ms, value)

    def series(self, metric_name: str | None = None) -> Iterator[SeriesSamples]:
        """All series (or those of one metric name), in label-set order as Prometheus
        returns them from its index."""
        ordered = self._ordered.get(metric_name)
        if ordered is None:
            pool = self._series if metric_name is None else self._by_name.get(metric_name, {})
            ordered = self._ordered[metric_name] = [pool[key] for key in sorted(pool)]
        yield from ordered

    def retain(self, min_timestamp_ms: int) -> None:
        times = self._times
        if len(times) > 2 * self._times_pruned + 64:  # amortized: not every evaluation
            self._times = {t: t for t in times if t >= min_timestamp_ms}
            self._times_pruned = len(self._times)
        for key, series in list(self._series.items()):
            series.drop_before(min_timestamp_ms)
            if not series.timestamps:
                del self._series[key]
                by_name = self._by_name.get(dict(key).get("__name__", ""), {})
                by_name.pop(key, None)
                self._ordered.clear()
                self.generation += 1

    def __len__(self) -> int:
        return len(self._series)
