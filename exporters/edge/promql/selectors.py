"""Series selection: label matchers, the instant lookback and range windows.

Prometheus 2.x semantics (``promql/engine.go`` ``vectorSelectorSingle`` and
``matrixIterSlice``): an instant selector at ``t`` takes the newest sample in
``[t - offset - 5m, t - offset]`` unless that sample is a staleness marker; a
range selector takes every sample in ``[t - offset - range, t - offset]``
except staleness markers. Both ends are closed in 2.x.
"""

from __future__ import annotations

import bisect
import re
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import promql_parser

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql.storage import MemoryStorage, SeriesSamples, is_stale
from modelmon.exporters.edge.promql.values import METRIC_NAME, Sample, Vector

LOOKBACK_DELTA_MS = 5 * 60 * 1000


def duration_ms(delta: object) -> int:
    """A parser ``timedelta`` as integer milliseconds (negative offsets allowed)."""
    from datetime import timedelta

    assert isinstance(delta, timedelta)
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + delta.microseconds // 1000


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str
    regex: re.Pattern[str] | None = None

    def matches(self, label_value: str) -> bool:
        if self.op == "=":
            return label_value == self.value
        if self.op == "!=":
            return label_value != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(label_value) is not None
        return found if self.op == "=~" else not found


# The parser's enums are not hashable: looked up by equality.
_OPS = ((promql_parser.MatchOp.Equal, "="), (promql_parser.MatchOp.NotEqual, "!="),
        (promql_parser.MatchOp.Re, "=~"), (promql_parser.MatchOp.NotRe, "!~"))


def _op(op: promql_parser.MatchOp) -> str:
    return next(text for member, text in _OPS if member == op)


def compile_matcher(name: str, op: str, value: str) -> Matcher:
    regex = None
    if op in ("=~", "!~"):
        # Prometheus anchors the regex: ^(?:value)$ ; fullmatch does the same.
        regex = re.compile(f"(?:{value})")
    return Matcher(name, op, value, regex)


@dataclass(frozen=True, eq=False)
class Selector:
    """A compiled vector selector: its matchers (``__name__`` included) and offset."""

    matchers: tuple[Matcher, ...]
    offset_ms: int
    metric_name: str | None  # for an index lookup when the name is fixed

    @classmethod
    def from_ast(cls, node: promql_parser.VectorSelector) -> Selector:
        matchers = [compile_matcher(m.name, _op(m.op), m.value) for m in node.matchers.matchers]
        if node.name is not None:
            matchers.append(Matcher(METRIC_NAME, "=", node.name))
        fixed = next((m.value for m in matchers if m.name == METRIC_NAME and m.op == "="), None)
        offset = duration_ms(node.offset) if node.offset is not None else 0
        return cls(tuple(matchers), offset, fixed)

    def select(self, storage: MemoryStorage) -> list[SeriesSamples]:
        # Rules run the same selectors every interval while series rarely change:
        # the matches are kept until the storage's set of series changes.
        key = (storage.uid, storage.generation)
        cached = _MATCHES.get(self)
        if cached is not None and cached[0] == key:
            return cached[1]
        found = [series for series in storage.series(self.metric_name)
                 if all(m.matches(_get(series.labels, m.name)) for m in self.matchers)]
        _MATCHES[self] = (key, found)
        return found

    def instant(self, storage: MemoryStorage, t_ms: int) -> Vector:
        ref = t_ms - self.offset_ms
        out: Vector = []
        for series in self.select(storage):
            i = bisect.bisect_right(series.timestamps, ref) - 1
            if i < 0:
                continue
            ts = series.timestamps[i]
            if ts < ref - LOOKBACK_DELTA_MS:
                continue
            value = series.values[i]
            if is_stale(value):
                continue
            out.append(Sample(series.labels, value, ts))
        return out

    def ranges(self, storage: MemoryStorage, t_ms: int, range_ms: int
               ) -> Iterator[tuple[LabelSet, Sequence[int], Sequence[float]]]:
        """Per series with at least one sample in the window: (labels, times, values)."""
        maxt = t_ms - self.offset_ms
        mint = maxt - range_ms
        for series in self.select(storage):
            lo = bisect.bisect_left(series.timestamps, mint)
            hi = bisect.bisect_right(series.timestamps, maxt)
            if lo >= hi:
                continue
            if not series.stale_markers:
                yield series.labels, series.timestamps[lo:hi], series.values[lo:hi]
                continue
            times: list[int] = []
            values: list[float] = []
            for ts, v in zip(series.timestamps[lo:hi], series.values[lo:hi], strict=True):
                if not is_stale(v):
                    times.append(ts)
                    values.append(v)
            if times:
                yield series.labels, times, values


_MATCHES: weakref.WeakKeyDictionary[Selector, tuple[tuple[int, int], list[SeriesSamples]]] = \
    weakref.WeakKeyDictionary()


def _get(labels: LabelSet, name: str) -> str:
    for n, v in labels:
        if n == name:
            return v
    return ""

