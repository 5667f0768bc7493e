"""Aggregation operators (``sum``, ``avg``, ``min``, ``max``, ``count``, ``group``,
``stddev``, ``stdvar``, ``topk``, ``bottomk``, ``quantile``) by or without labels.

As in Prometheus 2.42 (``evaluator.aggregation``): groups keep the order in
which they are first seen, ``sum`` adds in input order, ``avg`` uses the
incremental mean, ``topk``/``bottomk`` keep Go's ``container/heap`` so ties pick
the same series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql.errors import PromQLError
from modelmon.exporters.edge.promql.values import (
    METRIC_NAME,
    Sample,
    Vector,
    with_labels,
    without_labels,
)


def quantile(q: float, values: list[float]) -> float:
    """``promql.quantile``: linear interpolation between closest ranks."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    values = sorted(values, key=lambda v: (not math.isnan(v), v if not math.isnan(v) else 0.0))
    n = float(len(values))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight


Less = Callable[[Sample, Sample], bool]


def _min_heap_less(a: Sample, b: Sample) -> bool:  # vectorByValueHeap
    return math.isnan(a.value) or a.value < b.value


def _max_heap_less(a: Sample, b: Sample) -> bool:  # vectorByReverseValueHeap
    return math.isnan(a.value) or a.value > b.value


def _heap_up(h: list[Sample], j: int, less: Less) -> None:
    while True:
        i = (j - 1) // 2
        if j <= 0 or i == j or not less(h[j], h[i]):
            break
        h[i], h[j] = h[j], h[i]
        j = i


def _heap_down(h: list[Sample], i0: int, n: int, less: Less) -> None:
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n or j1 < 0:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and less(h[j2], h[j1]):
            j = j2
        if not less(h[j], h[i]):
            break
        h[i], h[j] = h[j], h[i]
        i = j


def _heap_push(h: list[Sample], s: Sample, less: Less) -> None:
    h.append(s)
    _heap_up(h, len(h) - 1, less)


def _heap_pop(h: list[Sample], less: Less) -> None:
    n = len(h) - 1
    h[0], h[n] = h[n], h[0]
    _heap_down(h, 0, n, less)
    h.pop()


@dataclass
class _Group:
    labels: LabelSet
    value: float
    mean: float
    count: int = 1
    heap: list[Sample] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def group_labels(labels: LabelSet, grouping: Sequence[str], without: bool) -> LabelSet:
    if without:
        return without_labels(labels, [*grouping, METRIC_NAME])
    if grouping:
        return with_labels(labels, grouping)
    return ()


# A memo of group keys that grows past this is started afresh (series come and go).
MEMO_LIMIT = 20_000


def aggregate(op: str, vector: Vector, grouping: Sequence[str], without: bool,
              param: float | None, keys: dict[LabelSet, LabelSet] | None = None) -> Vector:
    """``keys``: the compiled aggregation's memo of series labels -> group key (an
    expression evaluated every interval meets the same series again)."""
    k = 0
    if op in ("topk", "bottomk"):
        assert param is not None
        if math.isnan(param) or not -(2.0**63) <= param < 2.0**63:
            raise PromQLError(f"Scalar value {_go_float(param)} overflows int64")
        k = int(param)
        if k < 1:
            return []
    groups: dict[LabelSet, _Group] = {}
    less = _max_heap_less if op == "bottomk" else _min_heap_less
    if keys is None:
        keys = {}
    elif len(keys) >= MEMO_LIMIT:
        keys.clear()
    if op == "sum":  # the rules' most frequent aggregation, without the dispatch below
        sums: dict[LabelSet, float] = {}
        for s in vector:
            key = keys.get(s.labels)
            if key is None:
                key = keys[s.labels] = group_labels(s.labels, grouping, without)
            total = sums.get(key)
            sums[key] = s.value if total is None else total + s.value
        return [Sample(key, total) for key, total in sums.items()]
    for s in vector:
        key = keys.get(s.labels)
        if key is None:
            key = keys[s.labels] = group_labels(s.labels, grouping, without)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(key, s.value, s.value)
            if op in ("stdvar", "stddev"):
                group.value = 0.0
            elif op in ("topk", "bottomk"):
                group.heap = [Sample(s.labels, s.value)]
            elif op == "quantile":
                group.values = [s.value]
            elif op == "group":
                group.value = 1.0
            continue
        v = s.value
        if op == "sum":
            group.value += v
        elif op == "avg":
            group.count += 1
            if math.isinf(group.mean):
                if math.isinf(v) and (group.mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and not math.isnan(v):
                    continue
            group.mean += v / group.count - group.mean / group.count
        elif op == "max":
            if group.value < v or math.isnan(group.value):
                group.value = v
        elif op == "min":
            if group.value > v or math.isnan(group.value):
                group.value = v
        elif op == "count":
            group.count += 1
        elif op in ("stdvar", "stddev"):
            group.count += 1
            delta = v - group.mean
            group.mean += delta / group.count
            group.value += delta * (v - group.mean)
        elif op in ("topk", "bottomk"):
            h = group.heap
            top = h[0].value
            better = top < v if op == "topk" else top > v
            if len(h) < k or better or math.isnan(top):
                if len(h) == k:
                    if k == 1:
                        h[0] = Sample(s.labels, v)
                        continue
                    _heap_pop(h, less)
                _heap_push(h, Sample(s.labels, v), less)
        elif op == "quantile":
            group.values.append(v)
    out: Vector = []
    for group in groups.values():
        if op in ("topk", "bottomk"):
            # sort.Sort(sort.Reverse(heap)): order only, membership is the heap's.
            out.extend(sorted(group.heap, key=lambda s: (math.isnan(s.value), s.value),
                              reverse=op == "topk"))
            continue
        if op == "avg":
            value = group.mean
        elif op == "count":
            value = float(group.count)
        elif op == "stdvar":
            value = group.value / group.count
        elif op == "stddev":
            value = math.sqrt(group.value / group.count) if group.value >= 0 else math.nan
        elif op == "quantile":
            assert param is not None
            value = quantile(param, group.values)
        else:
            value = group.value
        out.append(Sample(group.labels, value))
    return out


def _go_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)
