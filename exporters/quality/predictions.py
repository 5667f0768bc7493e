"""What ``record_predictions`` counts: classes or values, scores, their drift."""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from prometheus_client import Counter as CounterMetric  # collections.Counter is used too

from modelmon.exporters.quality.bin_counters import BinCounters, BinSeriesAllowance
from modelmon.exporters.quality.drift import BinLayout, DriftScores
from modelmon.exporters.quality.profile import FeatureProfile, confidence_of
from modelmon.exporters.quality.values import category_key, is_missing, to_float_or_none
from modelmon.exporters.quality.window import SlidingCounts
from modelmon.labels import OTHER
from modelmon.metrics import MetricSet

Task = Literal["classification", "regression"]
DEFAULT_MAX_CLASSES = 50


def as_list(values: Any) -> list[Any]:
    """One value per row from a scalar, a sequence, a numpy array or a pandas Series."""
    if values is None:
        return []
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist() if values.ndim <= 1 else values.tolist()
    if hasattr(values, "tolist") and not isinstance(values, str | bytes):
        out = values.tolist()
        return out if isinstance(out, list) else [out]
    if isinstance(values, list | tuple):
        return list(values)
    return [values]


class _DriftTarget:
    """A one-feature window (predictions or scores) with its reference bins."""

    def __init__(
        self, reference: FeatureProfile, window: SlidingCounts, counters: BinCounters
    ) -> None:
        self.reference = reference
        self.layout = BinLayout([reference])
        self.window = window
        self.counters = counters
        self.edges = list(reference.edges)
        self.categories = {c: i for i, c in enumerate(reference.categories)}
        self.other = len(reference.categories)

    def bin_of(self, value: Any) -> int | None:
        if self.reference.kind == "numeric":
            x = to_float_or_none(value)
            return None if x is None or math.isnan(x) else bisect_left(self.edges, x)
        if is_missing(value):
            return None
        key = category_key(value)
        return None if key is None else self.categories.get(key, self.other)

    def add(self, values: list[Any]) -> None:
        bins = [self.bin_of(v) for v in values]
        index = np.array([[self.layout.total if b is None else b] for b in bins], dtype=np.int64)
        self.counters.add(self.window.add_batch(index)[: self.layout.total])


class PredictionRecorder:
    def __init__(
        self,
        metrics: MetricSet,
        model: str,
        version: str,
        *,
        task: Task | None,
        prediction_reference: FeatureProfile | None,
        score_reference: FeatureProfile | None,
        make_window: Callable[[int], SlidingCounts],
        max_classes: int = DEFAULT_MAX_CLASSES,
        bin_allowance: BinSeriesAllowance | None = None,
    ) -> None:
        if task is None and prediction_reference is not None:
            task = "classification" if prediction_reference.kind == "categorical" else "regression"
        self.task: Task | None = task
        self._metrics = metrics
        self._labels = (model, version)
        self._predictions = metrics.counter("predictions_total")
        self._class_children: dict[str, CounterMetric] = {}
        self._max_classes = max_classes
        self._score = metrics.histogram("prediction_score").labels(model, version)
        self._value = metrics.histogram("prediction_value").labels(model, version)
        self._lock = threading.Lock()
        self.version = 0
        self._bin_allowance = bin_allowance
        self.prediction_drift = self._target("prediction", prediction_reference, make_window)
        self.score_drift = self._target("score", score_reference, make_window)

    def _target(
        self, kind: str, reference: FeatureProfile | None,
        make_window: Callable[[int], SlidingCounts],
    ) -> _DriftTarget | None:
        if reference is None:
            return None
        counters = BinCounters(self._metrics, *self._labels, kind, [reference],
                               self._bin_allowance)
        return _DriftTarget(reference, make_window(reference.bins), counters)

    def record(self, y_pred: Any, scores: Any) -> list[Any]:
        """Count one batch; return one normalized prediction per row (class key or
        float, None when unusable) for the feedback store."""
        values = as_list(y_pred)
        task = self.task or self._infer_task(values)
        if task == "classification":
            keys = [None if is_missing(v) else category_key(v) for v in values]
            for key, count in Counter(k for k in keys if k is not None).items():
                self._class_child(key).inc(count)
            normalized: list[Any] = keys
        else:
            floats = [to_float_or_none(v) for v in values]
            observe = self._value.observe
            for x in floats:
                if x is not None and not math.isnan(x):
                    observe(x)
            normalized = floats
        confidences: list[Any] = []
        if scores is not None:
            confidences = confidence_of(scores)
            observe = self._score.observe
            for s in confidences:
                x = to_float_or_none(s)
                if x is not None and math.isfinite(x):
                    observe(x)
        if self.prediction_drift is not None or self.score_drift is not None:
            with self._lock:
                if self.prediction_drift is not None and values:
                    self.prediction_drift.add(values)
                if self.score_drift is not None and confidences:
                    self.score_drift.add(confidences)
                self.version += 1
        return normalized

    def flush(self) -> None:
        """Bring the fleet drift bin counters up to date now (tests, shutdown)."""
        for target in (self.prediction_drift, self.score_drift):
            if target is not None:
                target.counters.flush()

    def drift(self) -> dict[str, tuple[DriftScores, int]]:
        out = {}
        with self._lock:
            for name, target in (("prediction", self.prediction_drift),
                                 ("score", self.score_drift)):
                if target is not None:
                    counts, rows = target.window.snapshot()
                    out[name] = (target.layout.scores(counts), rows)
        return out

    def _infer_task(self, values: list[Any]) -> Task:
        for v in values:
            if is_missing(v):
                continue
            self.task = "regression" if isinstance(v, float | np.floating) else "classification"
            return self.task
        return "classification"

    def _class_child(self, key: str) -> CounterMetric:
        child = self._class_children.get(key)
        if child is None:
            label = key
            if len(self._class_children) >= self._max_classes:
                label = OTHER
                self._metrics.counter("label_overflow_total").labels("predictions_total", "class").inc()
            label = self._metrics.limiter.limit("predictions_total", "class", label)
            child = self._predictions.labels(*self._labels, label)
            if label != OTHER or len(self._class_children) < 10 * self._max_classes:
                self._class_children[key] = child
        return child
