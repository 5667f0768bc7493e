"""Functions over instant vectors and scalars (``abs``, ``clamp*``, ``ln``, ``exp``,
``round``, ``scalar``, ``vector``, ``time``, ``absent``, ``histogram_quantile``,
``label_replace`` and a few more of the same kind), as in Prometheus 2.42.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import gomath
from modelmon.exporters.edge.promql.selectors import Matcher
from modelmon.exporters.edge.promql.values import (
    METRIC_NAME,
    Sample,
    Vector,
    drop_name,
    label_value,
    set_label,
    without_labels,
)

SIMPLE: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": gomath.ceil,
    "floor": gomath.floor,
    "exp": gomath.exp,
    "ln": gomath.log,
    "log2": gomath.log2,
    "log10": gomath.log10,
    "sqrt": gomath.sqrt,
    "sgn": lambda v: -1.0 if v < 0 else 1.0 if v > 0 else v,
}


def simple(name: str, vector: Vector) -> Vector:
    f = SIMPLE[name]
    return [Sample(drop_name(s.labels), f(s.value)) for s in vector]


def clamp(vector: Vector, low: float | None, high: float | None) -> Vector:
    if low is not None and high is not None and high < low:
        return []
    out: Vector = []
    for s in vector:
        v = s.value
        if high is not None:
            v = gomath.go_min(high, v)
        if low is not None:
            v = gomath.go_max(low, v)
        out.append(Sample(drop_name(s.labels), v))
    return out


def round_(vector: Vector, to_nearest: float) -> Vector:
    inverse = gomath.div(1.0, to_nearest)
    return [Sample(drop_name(s.labels), gomath.div(gomath.floor(s.value * inverse + 0.5), inverse))
            for s in vector]


def scalar(vector: Vector) -> float:
    return vector[0].value if len(vector) == 1 else math.nan


def timestamp(vector: Vector, at_ms: int | None = None) -> Vector:
    return [Sample(drop_name(s.labels), (s.timestamp if at_ms is None else at_ms) / 1000)
            for s in vector]


def absent_labels(matchers: Sequence[Matcher] | None) -> LabelSet:
    """``createLabelsForAbsentFunction``: the equality matchers' labels, unless the
    same label is also matched otherwise."""
    if not matchers:
        return ()
    labels: dict[str, str] = {}
    has: set[str] = set()
    for m in matchers:
        if m.name == METRIC_NAME:
            continue
        if m.op == "=" and m.name not in has:
            labels[m.name] = m.value
            has.add(m.name)
        else:
            labels.pop(m.name, None)
    return tuple(sorted((n, v) for n, v in labels.items() if v != ""))


def label_replace(vector: Vector, dst: str, replacement: str, src: str,
                  regex: re.Pattern[str]) -> Vector:
    out: Vector = []
    for s in vector:
        src_value = label_value(s.labels, src)
        match = regex.fullmatch(src_value)
        labels = s.labels
        if match is not None:
            labels = set_label(labels, dst, expand(replacement, match))
        out.append(Sample(labels, s.value))
    return out


_NAME = re.compile(r"[A-Za-z0-9_]+")


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``;
    a group that does not exist expands to nothing."""
    out: list[str] = []
    i = 0
    while i < len(template):
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < len(template) and template[i] == "$":
            out.append("$")
            i += 1
            continue
        name = None
        if i < len(template) and template[i] == "{":
            close = template.find("}", i + 1)
            candidate = template[i + 1:close] if close > 0 else ""
            if close > 0 and _NAME.fullmatch(candidate):
                name, i = candidate, close + 1
        else:
            m = _NAME.match(template, i)
            if m:
                name, i = m.group(0), m.end()
        if name is None:
            out.append("$")  # malformed: Go keeps the dollar as text
            continue
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    if name.isdigit():
        n = int(name)
        if n <= (match.re.groups):
            return match.group(n) or ""
        return ""
    try:
        return match.group(name) or ""
    except IndexError:
        return ""


def histogram_quantile(q: float, vector: Vector) -> Vector:
    """Classic histograms: ``le`` buckets per series, ``bucketQuantile``."""
    groups: dict[LabelSet, tuple[LabelSet, list[tuple[float, float]]]] = {}
    for s in vector:
        try:
            upper = _parse_go_float(label_value(s.labels, "le"))
        except ValueError:
            continue
        key = without_labels(s.labels, ("le",))
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = (without_labels(s.labels, ("le", METRIC_NAME)), [])
        entry[1].append((upper, s.value))
    return [Sample(labels, bucket_quantile(q, buckets)) for labels, buckets in groups.values()]


def _parse_go_float(text: str) -> float:
    lowered = text.lower().lstrip("+-")
    if lowered in ("inf", "infinity"):
        return -math.inf if text.startswith("-") else math.inf
    if lowered == "nan":
        return math.nan
    if not text or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?0[xX][0-9a-fA-F.]+(p[+-]?\d+)?", text):
        raise ValueError(text)
    return float.fromhex(text) if "x" in text.lower() else float(text)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    coalesced: list[list[float]] = []
    for upper, count in buckets:
        if coalesced and coalesced[-1][0] == upper:
            coalesced[-1][1] += count
        else:
            coalesced.append([upper, count])
    highest = coalesced[0][1]
    for bucket in coalesced[1:]:
        if bucket[1] > highest:
            highest = bucket[1]
        elif bucket[1] < highest:
            bucket[1] = highest
    if len(coalesced) < 2:
        return math.nan
    observations = coalesced[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the +Inf bucket: the first with count >= rank.
    b = next((i for i in range(len(coalesced) - 1) if coalesced[i][1] >= rank), len(coalesced) - 1)
    if b == len(coalesced) - 1:
        return coalesced[-2][0]
    if b == 0 and coalesced[0][0] <= 0:
        return coalesced[0][0]
    start = 0.0
    end, count = coalesced[b][0], coalesced[b][1]
    if b > 0:
        start = coalesced[b - 1][0]
        count -= coalesced[b - 1][1]
        rank -= coalesced[b - 1][1]
    return start + (end - start) * gomath.div(rank, count)


