"""Binary operators: arithmetic, comparisons (filtering or ``bool``), ``atan2``,
the set operators, and vector matching (``on``, ``ignoring``, ``group_left``,
``group_right``) with Prometheus 2.42's results and error messages
(``VectorBinop``, ``VectorscalarBinop``, ``resultMetric``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import gomath
from modelmon.exporters.edge.promql.errors import PromQLError
from modelmon.exporters.edge.promql.values import (
    METRIC_NAME,
    Sample,
    Vector,
    drop_name,
    format_labels,
    label_value,
    with_labels,
    without_labels,
)

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": gomath.div,
    "%": gomath.mod,
    "^": gomath.pow_,
    "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
SET_OPERATORS = ("and", "or", "unless")
_DROPS_NAME = ("+", "-", "*", "/", "%", "^")
_MEMO_LIMIT = 20_000


@dataclass(frozen=True)
class Matching:
    """``e.VectorMatching``: cardinality ("one-to-one", "many-to-one",
    "one-to-many", "many-to-many"), on/ignoring labels and group_x labels."""

    card: str
    on: bool
    labels: tuple[str, ...]
    include: tuple[str, ...]
    # An expression evaluated every interval meets the same series again: their
    # signatures and result label sets are kept (started afresh past _MEMO_LIMIT).
    _signatures: dict[LabelSet, LabelSet] = field(
        default_factory=dict, compare=False, hash=False, repr=False)
    _results: dict[tuple[str, LabelSet, LabelSet], LabelSet] = field(
        default_factory=dict, compare=False, hash=False, repr=False)

    def signature(self, labels: LabelSet) -> LabelSet:
        sig = self._signatures.get(labels)
        if sig is None:
            if len(self._signatures) >= _MEMO_LIMIT:
                self._signatures.clear()
            if self.on:
                sig = with_labels(labels, self.labels)
            else:
                sig = without_labels(labels, (*self.labels, METRIC_NAME))
            self._signatures[labels] = sig
        return sig


def scalar_op(op: str, a: float, b: float) -> float:
    if op in COMPARISON:
        return 1.0 if COMPARISON[op](a, b) else 0.0
    return ARITHMETIC[op](a, b)


def _elem(op: str, lhs: float, rhs: float) -> tuple[float, bool]:
    if op in COMPARISON:
        return lhs, COMPARISON[op](lhs, rhs)
    return ARITHMETIC[op](lhs, rhs), True


def vector_scalar(op: str, vector: Vector, scalar: float, swap: bool, return_bool: bool) -> Vector:
    out: Vector = []
    comparison = op in COMPARISON
    for s in vector:
        lv, rv = (scalar, s.value) if swap else (s.value, scalar)
        value, keep = _elem(op, lv, rv)
        if comparison and swap:
            value = rv
        if return_bool:
            value = 1.0 if keep else 0.0
            keep = True
        if keep:
            labels = drop_name(s.labels) if op in _DROPS_NAME or return_bool else s.labels
            out.append(Sample(labels, value))
    return out


def set_operation(op: str, lhs: Vector, rhs: Vector, matching: Matching) -> Vector:
    sig = matching.signature
    if op == "and":
        if not lhs or not rhs:
            return []
        right = {sig(s.labels) for s in rhs}
        return [s for s in lhs if sig(s.labels) in right]
    if op == "or":
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        left = {sig(s.labels) for s in lhs}
        return [*lhs, *(s for s in rhs if sig(s.labels) not in left)]
    # unless
    if not lhs or not rhs:
        return list(lhs)
    right = {sig(s.labels) for s in rhs}
    return [s for s in lhs if sig(s.labels) not in right]


def vector_vector(op: str, lhs: Vector, rhs: Vector, matching: Matching,
                  return_bool: bool) -> Vector:
    if not lhs or not rhs:
        return []
    one_to_many = matching.card == "one-to-many"
    if one_to_many:
        lhs, rhs = rhs, lhs
    right: dict[LabelSet, Sample] = {}
    for sample in rhs:
        key = matching.signature(sample.labels)
        dup = right.get(key)
        if dup is not None:
            side = "left" if one_to_many else "right"
            raise PromQLError(
                f"found duplicate series for the match group {format_labels(key)} on the "
                f"{side} hand-side of the operation: [{format_labels(sample.labels)}, "
                f"{format_labels(dup.labels)}];many-to-many matching not allowed: matching "
                "labels must be unique on one side")
        right[key] = sample
    matched_sigs: dict[LabelSet, set[LabelSet]] = {}
    out: Vector = []
    for ls in lhs:
        key = matching.signature(ls.labels)
        rs = right.get(key)
        if rs is None:
            continue
        vl, vr = (rs.value, ls.value) if one_to_many else (ls.value, rs.value)
        value, keep = _elem(op, vl, vr)
        if return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = result_metric(ls.labels, rs.labels, op, matching)
        if return_bool:
            metric = drop_name(metric)
        inserted = matched_sigs.get(key)
        if matching.card == "one-to-one":
            if inserted is not None:
                raise PromQLError("multiple matches for labels: many-to-one matching must be "
                                  "explicit (group_left/group_right)")
            matched_sigs[key] = set()
        else:
            if inserted is None:
                inserted = matched_sigs[key] = set()
            elif metric in inserted:
                raise PromQLError("multiple matches for labels: grouping labels must ensure "
                                  "unique matches")
            inserted.add(metric)
        out.append(Sample(metric, value))
    return out


def result_metric(lhs: LabelSet, rhs: LabelSet, op: str, matching: Matching) -> LabelSet:
    memo = matching._results
    key = (op, lhs, rhs)
    metric = memo.get(key)
    if metric is None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        metric = memo[key] = _result_metric(lhs, rhs, op, matching)
    return metric


def _result_metric(lhs: LabelSet, rhs: LabelSet, op: str, matching: Matching) -> LabelSet:
    labels = dict(lhs)
    if op in _DROPS_NAME:
        labels.pop(METRIC_NAME, None)
    if matching.card == "one-to-one":
        if matching.on:
            labels = {n: v for n, v in labels.items() if n in matching.labels}
        else:
            for name in matching.labels:
                labels.pop(name, None)
    for name in matching.include:
        v = label_value(rhs, name)
        if v:
            labels[name] = v
        else:
            labels.pop(name, None)
    return tuple(sorted(labels.items()))


def matching_from(card: str, on: bool, labels: Sequence[str], include: Sequence[str]) -> Matching:
    return Matching(card, on, tuple(labels), tuple(include))
