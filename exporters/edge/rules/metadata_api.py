"""Prometheus's metadata endpoints over the agent's local window.

``GET|POST /api/v1/labels``, ``GET /api/v1/label/<name>/values``,
``GET|POST /api/v1/series`` and ``GET /api/v1/status/buildinfo``: what a
Grafana's Prometheus data source asks for its query editor (autocompletion,
the metric browser) and to pick its features. Shapes and errors follow
Prometheus 2.42's ``web/api/v1/api.go``: ``match[]`` selectors are parsed by
the same ``promql-parser`` the evaluator uses (vector selectors only, without
``offset``/``@``, as ``ParseMetricSelector``), a bad selector or time is
``400 bad_data``, answers are sorted, an empty answer is ``[]``.

``start``/``end`` keep the series with a sample (staleness markers included,
as in the TSDB) in ``[start, end]``; the work is bounded by the window and by
``MAX_MATCH_SETS``.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import promql_parser

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import MemoryStorage
from modelmon.exporters.edge.promql.parsing import parse
from modelmon.exporters.edge.promql.selectors import Selector
from modelmon.exporters.edge.promql.storage import SeriesSamples

METADATA_PATHS = ("/api/v1/labels", "/api/v1/series", "/api/v1/status/buildinfo")
LABEL_VALUES = re.compile(r"^/api/v1/label/([^/]*)/values$")
# A Grafana sends one match[]; each set scans the window once.
MAX_MATCH_SETS = 100
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus's model.LabelNameRE

# The Prometheus version whose API this one answers like (the tests' Prometheus);
# a Grafana picks its features by it. The other fields say what really answers.
PROMETHEUS_VERSION = "2.42.0"


class MetadataError(ValueError):
    """A request Prometheus answers with ``400 bad_data``."""


def is_metadata_path(path: str) -> bool:
    return path in METADATA_PATHS or LABEL_VALUES.match(path) is not None


def build_info() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("modelmon")
    except PackageNotFoundError:
        ours = "unknown"
    return {"version": PROMETHEUS_VERSION, "revision": f"modelmon-{ours}",
            "branch": "modelmon-edge-agent", "buildUser": "modelmon",
            "buildDate": "", "goVersion": "none (modelmon edge agent, Python)"}


def parse_match_sets(texts: Sequence[str]) -> list[Selector]:
    """``match[]`` values as selectors, or MetadataError with Prometheus's message."""
    if len(texts) > MAX_MATCH_SETS:
        raise MetadataError(f"{len(texts)} match[] parameters: at most {MAX_MATCH_SETS} accepted")
    out: list[Selector] = []
    for text in texts:
        try:
            node = parse(text)
        except ValueError as exc:
            raise MetadataError(f"1:1: parse error: {exc}") from None
        if not isinstance(node, promql_parser.VectorSelector):
            raise MetadataError(f"parse error: {text[:200]!r} is not a vector selector")
        if node.offset is not None or node.at is not None:
            raise MetadataError(f"parse error: unexpected offset or @ in {text[:200]!r}")
        if node.matchers.or_matchers:
            raise MetadataError(f"parse error: 'or' inside {text[:200]!r} is not supported")
        try:
            selector = Selector.from_ast(node)
        except re.error as exc:
            raise MetadataError(f"parse error: invalid regular expression in {text[:200]!r}: "
                                f"{exc}") from None
        if all(m.matches("") for m in selector.matchers):
            raise MetadataError("match[] must contain at least one non-empty matcher")
        out.append(selector)
    return out


def _in_range(series: SeriesSamples, start_ms: float, end_ms: float) -> bool:
    times = series.timestamps
    i = bisect.bisect_left(times, start_ms) if start_ms > -math.inf else 0
    return i < len(times) and times[i] <= end_ms


def matching_series(storage: MemoryStorage, selectors: Sequence[Selector],
                    start_ms: float, end_ms: float) -> list[LabelSet]:
    """Label sets of the series matched by any selector (all without selectors) with a
    sample in ``[start_ms, end_ms]``, sorted as Prometheus's merged series set."""
    found: dict[LabelSet, None] = {}
    pools: Iterable[list[SeriesSamples]] = (
        [s.select(storage) for s in selectors] if selectors else [list(storage.series())])
    for pool in pools:
        for series in pool:
            if series.labels not in found and _in_range(series, start_ms, end_ms):
                found[series.labels] = None
    return sorted(found)


def label_names(series: Iterable[LabelSet]) -> list[str]:
    return sorted({name for labels in series for name, _ in labels})


def label_values(series: Iterable[LabelSet], name: str) -> list[str]:
    return sorted({value for labels in series for n, value in labels if n == name})


def check_label_name(name: str) -> str:
    if not _LABEL_NAME.match(name):
        raise MetadataError(f"invalid label name: {name[:200]!r}")
    return name


def answer(storage: MemoryStorage, path: str, params: dict[str, list[str]],
           start_ms: float, end_ms: float) -> Any:
    """The ``data`` of a metadata request (the caller holds the window's lock)."""
    if path == "/api/v1/status/buildinfo":
        return build_info()
    texts = params.get("match[]", [])
    if path == "/api/v1/series" and not texts:
        raise MetadataError("no match[] parameter provided")
    selectors = parse_match_sets(texts)
    series = matching_series(storage, selectors, start_ms, end_ms)
    if path == "/api/v1/series":
        return [dict(labels) for labels in series]
    if path == "/api/v1/labels":
        return label_names(series)
    found = LABEL_VALUES.match(path)
    assert found is not None
    return label_values(series, check_label_name(found.group(1)))
