"""QualityTracker: input checks, drift, predictions and feedback of one ModelMonitor.

``ModelMonitor`` creates it on first use with ``QualityTracker(monitor,
profile, **quality_options)`` and delegates ``check_inputs``,
``record_predictions`` and ``record_feedback`` to it. Every public method
swallows its own failures (counted in ``modelmon_quality_check_errors_total``
and logged): monitoring never breaks the model server.

Drift gauges are computed when Prometheus scrapes (``Gauge.set_function``)
from the window's bin counts, once per scrape for all features, so updates
never pay for them. In prometheus_client multiprocess mode functions are not
exported; there the gauges are set at most every ``refresh_seconds`` on update.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence, Sized
from pathlib import Path
from typing import Protocol

from prometheus_client import Gauge
from prometheus_client import values as _prom_values

from modelmon.exporters.quality.bin_counters import DEFAULT_MAX_BIN_SERIES, BinSeriesAllowance
from modelmon.exporters.quality.drift import METHODS, DriftScores
from modelmon.exporters.quality.feedback import (
    DEFAULT_CONFUSION_CLASSES,
    DEFAULT_QUEUE,
    DEFAULT_WINDOW,
    FeedbackJoiner,
)
from modelmon.exporters.quality.feedback_store import FeedbackStore
from modelmon.exporters.quality.inputs import InputChecker, select_drift_features
from modelmon.exporters.quality.predictions import (
    DEFAULT_MAX_CLASSES,
    PredictionRecorder,
    Task,
    as_list,
)
from modelmon.exporters.quality.profile import Profile, ProfileSource, as_profile
from modelmon.exporters.quality.window import DEFAULT_CHUNKS, SlidingCounts
from modelmon.metrics import MetricSet
from modelmon.units import parse_duration

log = logging.getLogger(__name__)

DEFAULT_WINDOW_ROWS = 10_000
DEFAULT_DRIFT_TOP_K = 50
DEFAULT_FEEDBACK_TTL = 7 * 86400.0
DEFAULT_FEEDBACK_MAX_ENTRIES = 1_000_000
_NAN = float("nan")


def _multiprocess_mode() -> bool:
    return _prom_values.ValueClass is not _prom_values.MutexValue


class MonitoredModel(Protocol):
    """What the tracker reads from its ModelMonitor: the model's labels and metrics."""

    @property
    def model(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def metrics(self) -> MetricSet: ...


class QualityTracker:
    """Model-quality KPIs of one ModelMonitor. Options (``quality_options``):

    - ``window``: drift window, an int of rows (default 10000) or a duration
      such as ``"15m"``; ``window_chunks`` (default 10) sets its granularity.
    - ``drift_features``: allowlist of features that get drift gauges;
      otherwise the top ``drift_top_k`` (default 50) by profile importance.
    - ``max_bin_series``: fleet drift series this model version may export
      (bin counters and reference shares, 3 per bin; default 2000): predictions
      and scores first, then drift features by importance, each all bins or
      none; a feature left out is counted in ``series_budget_exceeded_total``.
    - ``task``: "classification" or "regression" (default: from the profile's
      predictions, else guessed from the first predictions).
    - ``max_classes``: cap of ``predictions_total`` class labels (default 50).
    - ``feedback_db``: SQLite path of the feedback store, so it survives
      restarts (default ``$XDG_STATE_HOME/modelmon/feedback/<model>-<version>.sqlite``,
      ``~/.local/state`` without XDG_STATE_HOME; ``":memory:"`` keeps it in
      memory only); ``feedback_ttl`` (default
      "7d"), ``feedback_max_entries`` (default 1,000,000), ``feedback_window``
      (labels behind accuracy/MAE, default 1000), ``max_confusion_classes``
      (default 20), ``feedback_queue`` (default 100,000).
    - ``refresh_seconds``: multiprocess mode only, gauge refresh period (default 1).
    """

    def __init__(
        self,
        monitor: MonitoredModel,
        profile: ProfileSource | None = None,
        *,
        window: int | str | float = DEFAULT_WINDOW_ROWS,
        window_chunks: int = DEFAULT_CHUNKS,
        drift_features: Sequence[str] | None = None,
        drift_top_k: int = DEFAULT_DRIFT_TOP_K,
        max_bin_series: int = DEFAULT_MAX_BIN_SERIES,
        task: Task | None = None,
        max_classes: int = DEFAULT_MAX_CLASSES,
        feedback_db: str | Path | None = None,
        feedback_ttl: str | float = DEFAULT_FEEDBACK_TTL,
        feedback_max_entries: int = DEFAULT_FEEDBACK_MAX_ENTRIES,
        feedback_window: int = DEFAULT_WINDOW,
        max_confusion_classes: int = DEFAULT_CONFUSION_CLASSES,
        feedback_queue: int = DEFAULT_QUEUE,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if task not in (None, "classification", "regression"):
            raise ValueError(f"task: expected 'classification' or 'regression', got {task!r}")
        self.monitor = monitor
        self.model = monitor.model
        self.version = monitor.version
        self.metrics = monitor.metrics
        self.profile = as_profile(profile)
        self._make_window, slot_seconds = _window_factory(window, window_chunks, clock)
        # Time windows age without updates: the drift cache also keys on the slot.
        self._slot: Callable[[], int] = (
            (lambda: int(clock() // slot_seconds)) if slot_seconds else (lambda: 0)
        )
        m = self.metrics
        labels = (self.model, self.version)
        self._errors = m.counter("quality_check_errors_total")
        # Exported at 0 from the start, so rate() and alerts see the first error.
        self._error_children = {
            op: self._errors.labels(*labels, op)
            for op in ("check_inputs", "record_predictions", "record_feedback", "drift")
        }
        self._rows_fallback = m.counter("input_rows_total").labels(*labels)
        self._window_rows = m.gauge("drift_window_rows").labels(*labels)

        bins = BinSeriesAllowance(max_bin_series)
        # Predictions and scores take their few bins of max_bin_series before the features.
        self.predictions = PredictionRecorder(
            m, self.model, self.version, task=task,
            prediction_reference=self.profile.prediction if self.profile else None,
            score_reference=self.profile.score if self.profile else None,
            make_window=self._make_window, max_classes=max_classes, bin_allowance=bins,
        )
        self.inputs: InputChecker | None = None
        if self.profile is not None:
            drift = select_drift_features(self.profile, drift_features, drift_top_k)
            self.inputs = InputChecker(
                self.profile, m, self.model, self.version, drift,
                self._make_window(sum(f.bins for f in drift)) if drift else None,
                bin_allowance=bins,
            )
        if feedback_db is None:
            feedback_db = default_feedback_db(self.model, self.version)
        elif str(feedback_db) == ":memory:":
            feedback_db = None
        self.feedback = FeedbackJoiner(
            FeedbackStore(
                feedback_db,
                ttl_seconds=parse_duration(feedback_ttl, "feedback_ttl"),
                max_entries=feedback_max_entries,
            ),
            m, self.model, self.version, window=feedback_window,
            max_classes=max_confusion_classes, max_queue=feedback_queue,
            on_error=self._count_error,
            classes=_profile_classes(self.profile),
        )
        self._closed = False
        _close_at_exit(self)
        self._cache_lock = threading.Lock()
        self._cache_key: tuple[int | None, int, int] | None = None
        self._cache: dict[str, tuple[DriftScores, int]] = {}
        self._multiprocess = _multiprocess_mode()
        self._refresh_seconds = refresh_seconds
        self._last_refresh = 0.0
        self._gauges: list[tuple[Gauge, Callable[[], float]]] = []
        self._bind_gauges()

    # -- the API ModelMonitor delegates to -------------------------------------

    # Model inputs and outputs are typed ``object``: rows, batches, numpy
    # arrays and DataFrames are all accepted, and inspected at run time.

    def check_inputs(self, X: object) -> None:
        """Count data-quality problems of one row or a batch and update drift."""
        try:
            if self.inputs is None:
                self._rows_fallback.inc(_row_count(X))
            elif type(X) is dict:
                self.inputs.check_row(X)
            else:
                self.inputs.check_batch(X)
        except Exception:
            self._count_error("check_inputs")
            log.debug("check_inputs failed", exc_info=True)
        if self._multiprocess:
            self._refresh_if_due()

    def record_predictions(
        self, y_pred: object, scores: object = None, request_ids: object = None
    ) -> None:
        """Count classes or values and scores; remember predictions for feedback."""
        try:
            normalized = self.predictions.record(y_pred, scores)
            if request_ids is not None:
                ids = as_list(request_ids)
                if len(ids) != len(normalized):
                    raise ValueError(
                        f"request_ids: {len(ids)} ids for {len(normalized)} predictions"
                    )
                self.feedback.remember(ids, normalized)
        except Exception:
            self._count_error("record_predictions")
            log.debug("record_predictions failed", exc_info=True)
        if self._multiprocess:
            self._refresh_if_due()

    def record_feedback(self, request_id: object, y_true: object) -> None:
        """Queue a ground-truth label; it is joined with its prediction in the background."""
        try:
            self.feedback.submit(request_id, y_true)
        except Exception:
            self._count_error("record_feedback")
            log.debug("record_feedback failed", exc_info=True)

    def flush(self) -> None:
        """Process queued predictions and labels, and count pending rows, now (tests, shutdown)."""
        self._flush_bin_counters()
        self.feedback.flush()

    def close(self) -> None:
        """Flush and close the feedback store (at shutdown; the tracker is unusable after).

        Also runs at process exit (a gunicorn worker exits via sys.exit on
        SIGTERM): predictions still queued then would otherwise be lost, and
        their labels counted unmatched after a restart. Closing twice is a no-op.
        """
        if self._closed:
            return
        self._closed = True
        self._flush_bin_counters()
        self.feedback.close()

    def _flush_bin_counters(self) -> None:
        if self.inputs is not None:
            self.inputs.flush()
        self.predictions.flush()

    def drift(self) -> dict[str, dict[str, float]]:
        """Current drift per feature plus "__prediction__" / "__score__": {method: value}."""
        snap = self._snapshot()
        out: dict[str, dict[str, float]] = {}
        features = snap.get("features")
        if features is not None:
            scores, _ = features
            for j, f in enumerate(self.inputs.layout.features):  # type: ignore[union-attr]
                out[f.name] = {m: float(scores.method(m)[j]) for m in METHODS}
        for key in ("prediction", "score"):
            if key in snap:
                scores, _ = snap[key]
                out[f"__{key}__"] = {m: float(scores.method(m)[0]) for m in METHODS}
        return out

    def window_rows(self) -> int:
        features = self._snapshot().get("features")
        return 0 if features is None else int(features[1])

    # -- gauges -----------------------------------------------------------------

    def _bind_gauges(self) -> None:
        m = self.metrics
        labels = (self.model, self.version)
        feature_drift = m.gauge("feature_drift")
        limit = m.limiter.limit
        if self.inputs is not None and self.inputs.layout is not None:
            for j, f in enumerate(self.inputs.layout.features):
                methods = METHODS if f.kind == "numeric" else ("psi", "js")
                for method in methods:
                    child = feature_drift.labels(*labels, limit("feature_drift", "feature", f.name),
                                                 method)
                    self._bind(child, self._reader("features", method, j))
        for key, metric in (("prediction", "prediction_drift"), ("score", "score_drift")):
            target = getattr(self.predictions, f"{key}_drift")
            if target is None:
                continue
            methods = METHODS if target.reference.kind == "numeric" else ("psi", "js")
            gauge = m.gauge(metric)
            for method in methods:
                self._bind(gauge.labels(*labels, method), self._reader(key, method, 0))
        self._bind(self._window_rows, lambda: float(self.window_rows()))

    def _bind(self, child: Gauge, read: Callable[[], float]) -> None:
        if self._multiprocess:
            self._gauges.append((child, read))
        else:
            child.set_function(read)

    def _reader(self, key: str, method: str, j: int) -> Callable[[], float]:
        def read() -> float:
            try:
                entry = self._snapshot().get(key)
                return _NAN if entry is None else float(entry[0].method(method)[j])
            except Exception:  # a scrape must never fail because of us
                self._count_error("drift")
                log.debug("drift computation failed", exc_info=True)
                return _NAN

        return read

    def _snapshot(self) -> dict[str, tuple[DriftScores, int]]:
        """Drift of every window, recomputed only when a window changed."""
        inputs = self.inputs
        key = (
            inputs.version if inputs is not None else None,
            self.predictions.version,
            self._slot(),
        )
        with self._cache_lock:
            if key == self._cache_key:
                return self._cache
            snap: dict[str, tuple[DriftScores, int]] = {}
            if inputs is not None:
                result = inputs.drift()
                if result is not None:
                    snap["features"] = result
            snap.update(self.predictions.drift())
            self._cache, self._cache_key = snap, key
            return snap

    def _refresh_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh < self._refresh_seconds:
            return
        self._last_refresh = now
        for child, read in self._gauges:
            child.set(read())

    def _count_error(self, operation: str) -> None:
        child = self._error_children.get(operation)
        if child is None:
            child = self._errors.labels(self.model, self.version, operation)
            self._error_children[operation] = child
        child.inc()


def _close_at_exit(tracker: QualityTracker) -> None:
    # A weak reference: a tracker that is dropped is not kept alive for the exit.
    ref = weakref.ref(tracker)

    def close() -> None:
        target = ref()
        if target is not None:
            try:
                target.close()
            except Exception:  # at exit: say it, never mask the exit status
                log.exception("closing the quality tracker of %s %s failed",
                              target.model, target.version)

    atexit.register(close)


def default_feedback_db(model: str, version: str) -> Path:
    """Where a model version's feedback store lives unless configured: the
    user's state directory, like the log spool (one file per model version;
    gunicorn workers share it, so a label joins whichever worker predicted)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{model}-{version}")
    return Path(state) / "modelmon" / "feedback" / f"{safe}.sqlite"


def _profile_classes(profile: Profile | None) -> tuple[str, ...]:
    """The classes of a classifier's reference predictions, most frequent first."""
    reference = profile.prediction if profile is not None else None
    if reference is None or reference.kind != "categorical":
        return ()
    return reference.categories


def _window_factory(
    window: int | str | float, chunks: int, clock: Callable[[], float]
) -> tuple[Callable[[int], SlidingCounts], float]:
    """A SlidingCounts factory (bins -> window) and the slot length (0 for count windows)."""
    if isinstance(window, bool):
        raise ValueError(f"window: expected a number of rows or a duration like '15m', got {window!r}")
    if isinstance(window, int):
        if window < chunks:
            raise ValueError(
                f"window: {window} rows is fewer than window_chunks={chunks}; use at least "
                f"{chunks} rows (1000 or more gives stable drift)"
            )
        return (lambda bins: SlidingCounts(bins, rows=window, chunks=chunks, clock=clock)), 0.0
    seconds = parse_duration(window, "window")
    if math.isinf(seconds):
        raise ValueError("window: expected a finite duration such as '15m'")
    return (
        (lambda bins: SlidingCounts(bins, seconds=seconds, chunks=chunks, clock=clock)),
        seconds / chunks,
    )


def _row_count(X: object) -> int:
    if isinstance(X, Mapping) or not isinstance(X, Sized):
        return 1
    try:
        return len(X)
    except TypeError:  # e.g. a 0-d numpy array
        return 1
