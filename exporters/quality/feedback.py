"""Late ground truth: join labels with stored predictions, off the hot path.

``remember()`` (from record_predictions) and ``submit()`` (from
record_feedback) only append to a bounded in-memory queue; a daemon thread
writes predictions to the ``FeedbackStore``, joins labels, and updates the
feedback metrics. A full queue drops and counts (reason ``queue_full``): the
model server is never blocked. ``flush()`` drains the queue synchronously
(tests, shutdown).

Windowed gauges (accuracy, precision, recall, MAE) cover the last
``window`` joined labels; each update is O(1) plus O(classes) to publish.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from modelmon.exporters.quality.feedback_store import FeedbackStore
from modelmon.exporters.quality.values import category_key, is_missing, to_float_or_none
from modelmon.labels import OTHER
from modelmon.metrics import MetricSet

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 100_000
DEFAULT_WINDOW = 1000
DEFAULT_CONFUSION_CLASSES = 20
_FLUSH_INTERVAL = 0.2
# feedback_class_labels_total's outcomes: what precision and recall are made of.
CLASS_OUTCOMES = ("true_positive", "false_positive", "false_negative")
_SWEEP_INTERVAL = 30.0


class _ClassWindow:
    """Confusion counts over the last ``size`` (true, predicted) pairs."""

    def __init__(self, size: int) -> None:
        self.pairs: deque[tuple[str, str]] = deque()
        self.size = size
        self.correct = 0
        self.true = Counter[str]()
        self.predicted = Counter[str]()
        self.hits = Counter[str]()

    def add(self, true: str, predicted: str) -> None:
        if len(self.pairs) >= self.size:
            t, p = self.pairs.popleft()
            self._count(t, p, -1)
        self.pairs.append((true, predicted))
        self._count(true, predicted, 1)

    def _count(self, t: str, p: str, sign: int) -> None:
        self.true[t] += sign
        self.predicted[p] += sign
        if t == p:
            self.correct += sign
            self.hits[t] += sign


class _ErrorWindow:
    def __init__(self, size: int) -> None:
        self.errors: deque[float] = deque()
        self.size = size
        self.total = 0.0

    def add(self, error: float) -> None:
        if len(self.errors) >= self.size:
            self.total -= self.errors.popleft()
        self.errors.append(error)
        self.total += error

    @property
    def mae(self) -> float:
        # Re-sum now and then would guard float drift; the window is small enough
        # that the running sum's error stays far below any useful precision.
        return self.total / len(self.errors) if self.errors else float("nan")


class FeedbackJoiner:
    def __init__(
        self,
        store: FeedbackStore,
        metrics: MetricSet,
        model: str,
        version: str,
        *,
        window: int = DEFAULT_WINDOW,
        max_classes: int = DEFAULT_CONFUSION_CLASSES,
        max_queue: int = DEFAULT_QUEUE,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] = lambda operation: None,
        classes: Sequence[str] = (),
    ) -> None:
        if window < 1:
            raise ValueError(f"feedback_window: expected at least 1 label, got {window}")
        self.store = store
        self.model = model
        self.version = version
        self._clock = clock
        self._on_error = on_error
        self._queue: deque[tuple[Any, ...]] = deque()
        self._max_queue = max_queue
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()  # held by whoever drains (worker, flush)
        self._start_lock = threading.Lock()  # never held during I/O: callers may take it
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._last_sweep = 0.0
        labels = (model, version)
        self._labels = labels
        self._metrics = metrics
        m = metrics
        feedback = m.counter("feedback_total")
        self._correct = feedback.labels(*labels, "correct")
        self._incorrect = feedback.labels(*labels, "incorrect")
        self._observed = feedback.labels(*labels, "observed")
        self._unmatched = m.counter("feedback_unmatched_total").labels(*labels)
        self._delay = m.histogram("feedback_label_delay_seconds").labels(*labels)
        self._abs_error = m.histogram("feedback_absolute_error").labels(*labels)
        evictions = m.counter("feedback_store_evictions_total")
        self._evicted = {
            reason: evictions.labels(*labels, reason)
            for reason in ("ttl", "max_entries", "queue_full", "write_error")
        }
        self._entries = m.gauge("feedback_store_entries").labels(*labels)
        self._accuracy = m.gauge("feedback_accuracy").labels(*labels)
        self._mae = m.gauge("feedback_mae").labels(*labels)
        self._window_labels = m.gauge("feedback_window_labels").labels(*labels)
        self._confusion = m.counter("feedback_confusion_total")
        self._class_labels = m.counter("feedback_class_labels_total")
        self._precision = m.gauge("feedback_precision")
        self._recall = m.gauge("feedback_recall")
        self._max_classes = max_classes
        self._known_classes: set[str] = set()
        self._counted_classes: set[str] = set()
        self._classes = _ClassWindow(window)
        self._errors = _ErrorWindow(window)
        self._entries.set(store.count(model, version))
        # No labels yet: NaN, not a misleading accuracy of 0.
        self._accuracy.set(float("nan"))
        self._mae.set(float("nan"))
        # The reference profile's classes first, in its order: every process of the
        # fleet then names the same classes and folds the same rest into __other__,
        # and their per-class series exist at 0 before the first label.
        for key in classes:
            self._class_label(key)

    # -- called on the model server's threads: append only ---------------------

    def remember(self, request_ids: list[Any], predictions: list[Any]) -> None:
        now = self._clock()
        rows: list[tuple[str, str | None, float | None, float]] = []
        for rid, pred in zip(request_ids, predictions, strict=False):
            if rid is None:
                continue
            if isinstance(pred, str):
                rows.append((str(rid), pred, None, now))
            elif pred is not None:
                rows.append((str(rid), None, float(pred), now))
        if rows:
            self._enqueue(("p", rows), len(rows))

    def submit(self, request_id: Any, y_true: Any) -> None:
        self._enqueue(("f", str(request_id), y_true, self._clock()), 1)

    def _enqueue(self, item: tuple[Any, ...], size: int) -> None:
        if len(self._queue) >= self._max_queue:
            self._evicted["queue_full"].inc(size)
            return
        self._queue.append(item)
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            if len(self._queue) > 1000:
                self._wake.set()
            return
        if self._stopped:
            return
        with self._start_lock:
            if self._pid != os.getpid():  # forked: the parent's thread is gone
                self._pid = os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"modelmon-feedback-{self.model}", daemon=True
                )
                self._thread.start()

    # -- the worker ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(_FLUSH_INTERVAL)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self.flush()
            except Exception:  # never let the worker die; count and go on
                log.exception("modelmon feedback worker failed")
                self._on_error("record_feedback")

    def flush(self) -> None:
        """Write queued predictions, join queued labels, publish the gauges."""
        with self._drain_lock:
            self.store.reopen_after_fork()
            processed = False
            while self._queue:
                item = self._queue.popleft()
                processed = True
                try:
                    if item[0] == "p":
                        self._store_predictions(item[1])
                    else:
                        self._join(item[1], item[2], item[3])
                except Exception:
                    log.exception("modelmon feedback store operation failed")
                    if item[0] == "p":
                        self._evicted["write_error"].inc(len(item[1]))
                    else:
                        self._on_error("record_feedback")
            now = self._clock()
            if now - self._last_sweep >= _SWEEP_INTERVAL:
                self._last_sweep = now
                self.sweep()
                processed = True
            if processed:
                self._entries.set(self.store.count(self.model, self.version))
                self._publish()

    def close(self) -> None:
        """Process what is queued, stop the worker, close the store."""
        self.flush()
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._drain_lock:
            self.store.close()

    def sweep(self) -> None:
        expired = self.store.expire(self.model, self.version)
        if expired:
            self._evicted["ttl"].inc(expired)

    def _store_predictions(self, rows: list[tuple[str, str | None, float | None, float]]) -> None:
        evicted = self.store.put_many(self.model, self.version, rows)
        if evicted:
            self._evicted["max_entries"].inc(evicted)

    def _join(self, request_id: str, y_true: Any, at: float) -> None:
        stored = self.store.take(self.model, self.version, request_id)
        if stored is None or stored.expired:
            if stored is not None:
                self._evicted["ttl"].inc()
            self._unmatched.inc()
            return
        self._delay.observe(max(at - stored.timestamp, 0.0))
        if stored.pred_class is not None:
            true = None if is_missing(y_true) else category_key(y_true)
            if true is None:
                self._on_error("record_feedback")
                return
            predicted = stored.pred_class
            (self._correct if true == predicted else self._incorrect).inc()
            t, p = self._class_label(true), self._class_label(predicted)
            self._confusion.labels(*self._labels, t, p).inc()
            # Hits compare the classes themselves: two classes folded into __other__ differ.
            if true == predicted:
                self._class_labels.labels(*self._labels, t, "true_positive").inc()
            else:
                self._class_labels.labels(*self._labels, p, "false_positive").inc()
                self._class_labels.labels(*self._labels, t, "false_negative").inc()
            self._classes.add(t, p)
        else:
            value = to_float_or_none(y_true)
            if value is None or value != value:
                self._on_error("record_feedback")
                return
            assert stored.pred_value is not None
            error = abs(value - stored.pred_value)
            self._observed.inc()
            self._abs_error.observe(error)
            self._errors.add(error)

    def _class_label(self, key: str) -> str:
        if key in self._known_classes:
            return key
        label = OTHER if len(self._known_classes) >= self._max_classes else key
        if label != OTHER:
            self._known_classes.add(key)
        if label not in self._counted_classes:
            # A class's three outcome series start at 0 together.
            self._counted_classes.add(label)
            for outcome in CLASS_OUTCOMES:
                self._class_labels.labels(*self._labels, label, outcome)
        return label

    def _publish(self) -> None:
        w = self._classes
        labelled = len(w.pairs)
        if labelled:
            self._accuracy.set(w.correct / labelled)
            for cls in self._known_classes | ({OTHER} if OTHER in w.true or OTHER in w.predicted else set()):
                predicted, true, hits = w.predicted[cls], w.true[cls], w.hits[cls]
                self._precision.labels(*self._labels, cls).set(
                    hits / predicted if predicted else float("nan"))
                self._recall.labels(*self._labels, cls).set(hits / true if true else float("nan"))
        if self._errors.errors:
            self._mae.set(self._errors.mae)
        self._window_labels.set(labelled + len(self._errors.errors))
