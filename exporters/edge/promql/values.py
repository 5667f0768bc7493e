"""The values an expression evaluates to, and label-set helpers.

Labels are sorted ``(name, value)`` tuples (``prompb.LabelSet``); a label with
an empty value does not exist, as in Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql.errors import PromQLError

METRIC_NAME = "__name__"


@dataclass(slots=True)
class Sample:
    """One element of an instant vector. ``timestamp`` is the evaluation time
    (ms), except right after a selector where it is the sample's own time."""

    labels: LabelSet
    value: float
    timestamp: int = 0


Vector = list[Sample]


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float


@dataclass(frozen=True, slots=True)
class String:
    value: str


Value = Vector | Scalar | String


def label_value(labels: LabelSet, name: str) -> str:
    for n, v in labels:
        if n == name:
            return v
    return ""


def drop_name(labels: LabelSet) -> LabelSet:
    if labels and labels[0][0] == METRIC_NAME:  # "__name__" sorts first in practice
        return labels[1:]
    return tuple(p for p in labels if p[0] != METRIC_NAME)


def with_labels(labels: LabelSet, names: Iterable[str]) -> LabelSet:
    keep = set(names)
    return tuple(p for p in labels if p[0] in keep)


def without_labels(labels: LabelSet, names: Iterable[str]) -> LabelSet:
    drop = set(names)
    return tuple(p for p in labels if p[0] not in drop)


def set_label(labels: LabelSet, name: str, value: str) -> LabelSet:
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
    return tuple(sorted(rest))


def format_labels(labels: LabelSet) -> str:
    """Prometheus's ``labels.Labels.String()``, used in its error messages."""
    return "{" + ", ".join(f'{n}="{v}"' for n, v in labels) + "}"


def check_unique(vector: Vector) -> None:
    """Prometheus's ``ContainsSameLabelset`` check after a function or operator."""
    if len(vector) > 1 and len({s.labels for s in vector}) != len(vector):
        raise PromQLError("vector cannot contain metrics with the same labelset")
