"""ModelMonitor: the instrumentation API of one model version.

The hot path (``track()`` around a predict call) touches only label children
cached at construction, so a call costs a few lock-protected float updates and
two clock reads; it allocates one small object and never does I/O.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from prometheus_client import CollectorRegistry, Counter

from modelmon.config import QualityOptions
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.metrics import MetricSet, metric_set

if TYPE_CHECKING:
    # Imported when first used: a model server without quality checks or log
    # shipping never loads numpy or the spool.
    from modelmon.exporters.logs import LogShipper, ModelLog
    from modelmon.exporters.quality import QualityTracker
    from modelmon.exporters.quality.profile import ProfileSource

Outcome = Literal["success", "error", "rejected"]
OUTCOMES: tuple[str, ...] = ("success", "error", "rejected")
F = TypeVar("F", bound=Callable[..., Any])
# Seconds a tracker replaced by use_profile stays open for the requests that
# still hold it (no record_predictions call takes that long).
RETIRE_GRACE = 10.0

_perf_counter = time.perf_counter


class InferenceRejected(Exception):
    """Raise inside ``track()`` to refuse an input: counted as outcome="rejected"."""


class ModelMonitor:
    """Prometheus KPIs of one model version.

    >>> mon = ModelMonitor("fraud-detector", version="3.1.0", framework="sklearn")
    >>> @mon.track()
    ... def predict(X): ...

    ``registry`` defaults to prometheus_client's global registry. Monitors of
    several models can share one registry; they then share metric objects and
    differ by the ``model`` and ``version`` labels.

    Label values are bounded (modelmon.labels): ``max_label_values`` caps the
    distinct values of each label, ``max_series`` the series of the whole
    registry (default 5000); the excess is reported as ``__other__`` and
    counted. Characters no consumer accepts in a label value (controls, bidi
    overrides, lone surrogates) are replaced with U+FFFD and counted; nothing
    here raises into the model server because of a label value.
    """

    def __init__(
        self,
        model: str,
        version: str = "unknown",
        framework: str = "unknown",
        *,
        framework_version: str = "",
        task: str = "",
        registry: CollectorRegistry | None = None,
        prefix: str = DEFAULT_PREFIX,
        buckets: Mapping[str, Sequence[float]] | None = None,
        rejected_exceptions: tuple[type[BaseException], ...] = (),
        max_label_values: int | None = None,
        max_series: int | None = None,
        profile: ProfileSource | None = None,
        logs: LogShipper | None = None,
        quality_options: QualityOptions | None = None,
    ) -> None:
        for field, value in (("model", model), ("version", version), ("framework", framework)):
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"ModelMonitor {field} must be a non-empty string, got {value!r}"
                )
        self.metrics: MetricSet = metric_set(
            registry, prefix, buckets, max_label_values, max_series
        )
        # The identity is cleaned once, here: the labels, the feedback store
        # (SQLite refuses lone surrogates) and the log events all get text
        # they can encode, and the model server never sees an exception.
        clean = self.metrics.clean
        self.model = model = clean("model_info", "model", model)
        self.version = version = clean("model_info", "version", version)
        self.framework = framework = clean("model_info", "framework", framework)
        self._rejected_exceptions: tuple[type[BaseException], ...] = (
            InferenceRejected, *rejected_exceptions
        )
        m = self.metrics
        requests = m.counter("inference_requests_total")
        self._success = requests.labels(model, version, "success")
        self._error = requests.labels(model, version, "error")
        self._rejected = requests.labels(model, version, "rejected")
        self._duration = m.histogram("inference_duration_seconds").labels(model, version)
        self._in_flight = m.gauge("inference_in_flight").labels(model, version)
        self._batch = m.histogram("inference_batch_size").labels(model, version)
        payload = m.histogram("payload_bytes")
        self._request_bytes = payload.labels(model, version, "request")
        self._response_bytes = payload.labels(model, version, "response")
        self._exceptions_metric = m.counter("inference_exceptions_total")
        self._exception_children: dict[type[BaseException], Counter] = {}
        m.gauge("model_info").labels(model, version, framework, framework_version, task).set(1)
        self._profile = profile
        self._quality_options: QualityOptions = (
            quality_options.copy() if quality_options else QualityOptions()
        )
        self._quality: QualityTracker | None = None
        self._retired: list[tuple[QualityTracker, threading.Timer]] = []
        self.logs = logs
        self._log: ModelLog | None = None
        if profile is not None or quality_options:
            # Build it now so a bad profile or option fails here, at start-up,
            # not on the first request.
            self.quality  # noqa: B018

    # -- model quality and logging live in their own exporters; these are the
    # -- entry points users call (see modelmon.exporters.quality / .logs).

    @property
    def quality(self) -> QualityTracker:
        """The QualityTracker of this monitor (input checks, drift, predictions, feedback)."""
        if self._quality is None:
            from modelmon.exporters.quality import QualityTracker

            self._quality = QualityTracker(self, self._profile, **self._quality_options)
        return self._quality

    def use_profile(self, profile: ProfileSource) -> None:
        """Measure drift and check inputs against ``profile`` from now on.

        A new quality tracker is built with the same options and replaces the
        current one in one assignment, so a request sees either profile, never
        a mix; the old tracker's queued predictions and labels go to the
        feedback store it shares with the new one (a file: ``":memory:"``
        starts empty), and it stays open ``RETIRE_GRACE`` seconds for the
        requests that still hold it. A bad profile raises
        ProfileError here and changes nothing (an edge agent applies the
        reference profiles of a configuration bundle this way)."""
        from modelmon.exporters.quality import QualityTracker

        new = QualityTracker(self, profile, **self._quality_options)
        old, self._quality, self._profile = self._quality, new, new.profile
        if old is not None:
            # A request that read ``quality`` before the swap may still record on
            # the old tracker: it stays open RETIRE_GRACE seconds so that
            # prediction reaches the feedback store too, then closes.
            old.flush()
            timer = threading.Timer(RETIRE_GRACE, self._close_retired, args=(old,))
            timer.daemon = True
            self._retired.append((old, timer))
            timer.start()

    def _close_retired(self, tracker: QualityTracker) -> None:
        self._retired = [(t, timer) for t, timer in self._retired if t is not tracker]
        tracker.close()

    # Model inputs and outputs are typed ``object``: rows, batches, numpy
    # arrays and DataFrames are all accepted, and inspected at run time.

    def check_inputs(self, X: object) -> None:
        """Count data-quality problems of one row or a batch and update drift; never raises."""
        self.quality.check_inputs(X)

    def record_predictions(
        self, y_pred: object, scores: object = None, request_ids: object = None
    ) -> None:
        """Count predicted classes / outputs and scores; remember them for late feedback."""
        self.quality.record_predictions(y_pred, scores=scores, request_ids=request_ids)

    def record_feedback(self, request_id: str, y_true: object) -> None:
        """Join late ground truth with the prediction recorded under ``request_id``."""
        self.quality.record_feedback(request_id, y_true)

    def close(self) -> None:
        """Write what the quality tracker still queues (predictions waiting for
        their labels) and close its feedback store; call at shutdown. The log
        shipper belongs to the caller, who closes it."""
        for tracker, timer in self._retired:
            timer.cancel()
            tracker.close()
        self._retired = []
        if self._quality is not None:
            self._quality.close()

    @property
    def log(self) -> ModelLog:
        """Structured events at the AI pipeline's critical points: ``mon.log.prediction(...)``."""
        if self._log is None:
            from modelmon.exporters.logs import ModelLog

            self._log = ModelLog(self, self.logs)
        return self._log

    # -- the hot path -----------------------------------------------------

    @overload
    def track(self, fn: F) -> F: ...
    @overload
    def track(
        self, fn: None = None, *, batch_size: int | None = None, request_bytes: int | None = None
    ) -> Track: ...

    def track(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        batch_size: int | None = None,
        request_bytes: int | None = None,
    ) -> Track | Callable[..., Any]:
        """Count, time and classify inference calls.

        Use as a decorator (``@mon.track()`` or ``@mon.track``), on sync or
        async functions, or as a context manager (``with mon.track(batch_size=n)``).
        The decorator takes the batch size from ``len()`` of the first sized
        argument (the first after ``self`` for methods) unless ``batch_size``
        is given. Calls ended by a ``BaseException`` that is not an
        ``Exception`` (``asyncio.CancelledError`` when a client disconnects,
        ``KeyboardInterrupt``) are not counted: they say nothing of the model.
        """
        t = Track(self, batch_size, request_bytes)
        return t if fn is None else t(fn)

    def _finish(
        self,
        elapsed: float,
        exc: BaseException | None,
        outcome: str | None,
        batch_size: int | None,
        request_bytes: int | None,
        response_bytes: int | None,
    ) -> None:
        self._in_flight.dec()
        if exc is not None and not isinstance(exc, Exception):
            # Cancelled (asyncio.CancelledError: the client went away),
            # interrupted or exiting: no outcome of the model's, so it neither
            # counts as an error against the SLO nor as a served call.
            return
        self._duration.observe(elapsed)
        if exc is not None:
            self._count_exception(type(exc))
            if isinstance(exc, self._rejected_exceptions):
                self._rejected.inc()
            else:
                self._error.inc()
        elif outcome is None or outcome == "success":
            self._success.inc()
        else:
            self._outcome_child(outcome).inc()
        self._observe_sizes(batch_size, request_bytes, response_bytes)

    def _observe_sizes(
        self, batch_size: int | None, request_bytes: int | None, response_bytes: int | None
    ) -> None:
        if batch_size is not None:
            self._batch.observe(batch_size)
        if request_bytes is not None:
            self._request_bytes.observe(request_bytes)
        if response_bytes is not None:
            self._response_bytes.observe(response_bytes)

    def _count_exception(self, exc_type: type[BaseException]) -> None:
        child = self._exception_children.get(exc_type)
        if child is None:
            name = self.metrics.limiter.limit(
                "inference_exceptions_total", "exception", exc_type.__name__
            )
            child = self._exceptions_metric.labels(self.model, self.version, name)
            self._exception_children[exc_type] = child
        child.inc()

    def _outcome_child(self, outcome: str) -> Counter:
        if outcome == "error":
            return self._error
        if outcome == "rejected":
            return self._rejected
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")

    # -- recording finished calls (for /ingest and servers we do not wrap) --

    def observe_inference(
        self,
        duration_seconds: float,
        outcome: str = "success",
        *,
        batch_size: int | None = None,
        exception: str | None = None,
        request_bytes: int | None = None,
        response_bytes: int | None = None,
    ) -> None:
        """Record one inference that ran elsewhere (another process or language)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        self._duration.observe(duration_seconds)
        (self._success if outcome == "success" else self._outcome_child(outcome)).inc()
        if exception:
            name = self.metrics.limiter.limit("inference_exceptions_total", "exception", exception)
            self._exceptions_metric.labels(self.model, self.version, name).inc()
        self._observe_sizes(batch_size, request_bytes, response_bytes)

    # -- model lifecycle ----------------------------------------------------

    def record_model_load(self, duration_seconds: float, timestamp: float | None = None) -> None:
        """Record that this version was (re)loaded, taking ``duration_seconds``."""
        m = self.metrics
        m.gauge("model_load_duration_seconds").labels(self.model, self.version).set(
            duration_seconds
        )
        m.gauge("model_last_load_timestamp_seconds").labels(self.model, self.version).set(
            time.time() if timestamp is None else timestamp
        )

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Time a model load: ``with mon.loading(): model = joblib.load(path)``."""
        start = _perf_counter()
        yield
        self.record_model_load(_perf_counter() - start)


# Per argument type: True when it is sized (len() is its batch size), False
# when not (look at the next argument), None for str/bytes (one input, not a
# batch of characters). Caching spares a failing getattr() on every call with
# an unsized argument; bounded in case types are created dynamically.
_SIZED_TYPES: dict[type, bool | None] = {str: None, bytes: None}
_MAX_SIZED_TYPES = 1024
_UNKNOWN = object()


def _batch_size_of(args: tuple[object, ...]) -> int | None:
    # The first sized argument among the first two: for a method the first is
    # ``self``.
    for arg in args[:2]:
        cls = type(arg)
        sized = _SIZED_TYPES.get(cls, _UNKNOWN)
        if sized is _UNKNOWN:
            sized = getattr(cls, "__len__", None) is not None
            if len(_SIZED_TYPES) < _MAX_SIZED_TYPES:
                _SIZED_TYPES[cls] = sized
        if sized is None:
            return None
        if sized:
            try:
                return len(cast(Sized, arg))  # its type has __len__ (above)
            except TypeError:  # e.g. a 0-d numpy array
                return None
    return None


class Track:
    """What ``ModelMonitor.track()`` returns: a context manager and a decorator.

    Inside the ``with`` block, ``reject()`` marks the call as rejected and
    ``response_bytes`` may be set once the response size is known.
    """

    __slots__ = ("_mon", "_batch_size", "_request_bytes", "_start", "outcome", "response_bytes")

    def __init__(
        self, mon: ModelMonitor, batch_size: int | None, request_bytes: int | None
    ) -> None:
        self._mon = mon
        self._batch_size = batch_size
        self._request_bytes = request_bytes
        self.outcome: str | None = None
        self.response_bytes: int | None = None

    def reject(self) -> None:
        self.outcome = "rejected"

    def __enter__(self) -> Track:
        self._mon._in_flight.inc()
        self._start = _perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = _perf_counter() - self._start
        mon = self._mon
        if exc is None and self.outcome is None and self.response_bytes is None:
            # The success path of _finish, inlined: it runs on every call.
            mon._in_flight.dec()
            mon._duration.observe(elapsed)
            mon._success.inc()
            if self._batch_size is not None:
                mon._batch.observe(self._batch_size)
            if self._request_bytes is not None:
                mon._request_bytes.observe(self._request_bytes)
            return
        mon._finish(
            elapsed,
            exc,
            self.outcome,
            self._batch_size,
            self._request_bytes,
            self.response_bytes,
        )

    def __call__(self, fn: F) -> F:
        mon = self._mon
        fixed_batch = self._batch_size
        request_bytes = self._request_bytes
        in_flight = mon._in_flight
        finish = mon._finish

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                batch = fixed_batch if fixed_batch is not None else _batch_size_of(args)
                in_flight.inc()
                start = _perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    finish(_perf_counter() - start, exc, None, batch, request_bytes, None)
                    raise
                finish(_perf_counter() - start, None, None, batch, request_bytes, None)
                return result

            # functools.wraps keeps fn's name and signature; mypy cannot see
            # that the wrapper has fn's type F.
            return cast(F, async_wrapper)

        duration, success = mon._duration, mon._success
        batch_sizes, request_sizes = mon._batch, mon._request_bytes

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            batch = fixed_batch if fixed_batch is not None else _batch_size_of(args)
            in_flight.inc()
            start = _perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                finish(_perf_counter() - start, exc, None, batch, request_bytes, None)
                raise
            # The success path of _finish, inlined: it runs on every call.
            elapsed = _perf_counter() - start
            in_flight.dec()
            duration.observe(elapsed)
            success.inc()
            if batch is not None:
                batch_sizes.observe(batch)
            if request_bytes is not None:
                request_sizes.observe(request_bytes)
            return result

        return cast(F, wrapper)
