"""The AI pipeline's critical logging points: ``mon.log.<point>(...)``.

Each point is one ECS event with ``event.action`` naming the point, the model
under ``model.*`` (name, version, framework) and the request's correlation id
as ``trace.id``. Model inputs and outputs are logged only when the shipper was
configured with ``log_inputs`` / ``log_outputs``, and then truncated to
``max_payload_chars``.

==========================  ================================  ==========
method                      event.action                      log.level
==========================  ================================  ==========
``request_received``        ``request-received``              info
``input_rejected``          ``input-rejected``                warning
``prediction``              ``prediction``                    info/error
``error``                   ``error``                         error
``model_loaded``            ``model-loaded``                  info
``model_reloaded``          ``model-reloaded``                info
``model_rolled_back``       ``model-rolled-back``             warning
``drift_detected``          ``drift-threshold-crossed``       warning
``feedback_received``       ``feedback-received``             info
``edge_link_lost``          ``edge-link-lost``                warning
``edge_link_restored``      ``edge-link-restored``            info
==========================  ================================  ==========
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from modelmon.exporters.logs.ecs import error_fields, timestamp

if TYPE_CHECKING:
    from modelmon.exporters.logs.shipper import LogShipper

log = logging.getLogger(__name__)


class ModelIdentity(Protocol):
    """Whose events these are (their ``model.*`` fields): a ModelMonitor, or the
    edge agent itself."""

    @property
    def model(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def framework(self) -> str: ...


class ModelLog:
    """Logging points of one ModelMonitor; a no-op when it has no shipper."""

    def __init__(self, monitor: ModelIdentity, shipper: LogShipper | None) -> None:
        self._shipper = shipper
        self._model: dict[str, Any] = {
            "name": monitor.model, "version": monitor.version, "framework": monitor.framework,
        }
        if shipper is None:
            log.info(
                "ModelMonitor(%r) has no logs= shipper: mon.log events are discarded; pass "
                "logs=LogShipper(...) to ship them", monitor.model,
            )

    # -- the points -----------------------------------------------------------

    def request_received(self, *, request_id: str | None = None, route: str | None = None,
                         batch_size: int | None = None, inputs: Any = None,
                         **fields: Any) -> int | None:
        model: dict[str, Any] = {}
        if batch_size is not None:
            model["batch_size"] = batch_size
        self._add_inputs(model, inputs)
        extra = {"url": {"path": route}} if route else {}
        return self._emit("request-received", "info", "request received", model,
                          request_id=request_id, category="web", type_="start", extra=extra,
                          fields=fields)

    def input_rejected(self, violations: Sequence[Any] | Mapping[str, Any], *,
                       request_id: str | None = None, inputs: Any = None,
                       message: str | None = None, **fields: Any) -> int | None:
        if isinstance(violations, Mapping):
            listed = [{"check": str(k), "detail": _plain(v)} for k, v in violations.items()]
        else:
            listed = [_plain(v) for v in violations]
        model: dict[str, Any] = {"violations": listed, "violation_count": len(listed)}
        self._add_inputs(model, inputs)
        return self._emit("input-rejected", "warning",
                          message or f"input rejected: {len(listed)} quality violation(s)",
                          model, request_id=request_id, outcome="failure", fields=fields)

    def prediction(self, latency_seconds: float, *, outcome: str = "success",
                   prediction: Any = None, score: Any = None, inputs: Any = None,
                   request_id: str | None = None, batch_size: int | None = None,
                   **fields: Any) -> int | None:
        model: dict[str, Any] = {"outcome": outcome, "latency_seconds": latency_seconds}
        if batch_size is not None:
            model["batch_size"] = batch_size
        self._add_inputs(model, inputs)
        if self._shipper is not None and self._shipper.log_outputs:
            if prediction is not None:
                model["prediction"] = self._clip(prediction)
            if score is not None:
                model["score"] = score if isinstance(score, int | float) else self._clip(score)
        ok = outcome == "success"
        return self._emit(
            "prediction", "info" if ok else "error", f"prediction {outcome}", model,
            request_id=request_id, outcome="success" if ok else "failure",
            duration=latency_seconds, fields=fields,
        )

    def error(self, exc: BaseException | None = None, *, message: str | None = None,
              request_id: str | None = None, **fields: Any) -> int | None:
        extra: dict[str, Any] = {}
        if exc is not None:
            extra["error"] = error_fields(exc)
        text = message or (f"{type(exc).__name__}: {exc}" if exc is not None else "error")
        return self._emit("error", "error", text, {}, request_id=request_id,
                          outcome="failure", extra=extra, fields=fields)

    def model_loaded(self, *, duration_seconds: float | None = None, source: str | None = None,
                     **fields: Any) -> int | None:
        model = {"source": source} if source else {}
        return self._emit("model-loaded", "info", f"model {self._model['name']} "
                          f"{self._model['version']} loaded", model, category="configuration",
                          type_="creation", duration=duration_seconds, fields=fields)

    def model_reloaded(self, *, previous_version: str | None = None,
                       duration_seconds: float | None = None, **fields: Any) -> int | None:
        model = {"previous_version": previous_version} if previous_version else {}
        return self._emit("model-reloaded", "info", f"model {self._model['name']} reloaded "
                          f"as {self._model['version']}", model, category="configuration",
                          type_="change", duration=duration_seconds, fields=fields)

    def model_rolled_back(self, *, from_version: str, reason: str | None = None,
                          **fields: Any) -> int | None:
        model: dict[str, Any] = {"rolled_back_from": from_version}
        if reason:
            model["rollback_reason"] = reason
        return self._emit("model-rolled-back", "warning", f"model {self._model['name']} rolled "
                          f"back from {from_version} to {self._model['version']}", model,
                          category="configuration", type_="change", fields=fields)

    def drift_detected(self, *, feature: str, statistic: str, value: float, threshold: float,
                       **fields: Any) -> int | None:
        model = {"drift": {"feature": feature, "statistic": statistic, "value": value,
                           "threshold": threshold}}
        return self._emit("drift-threshold-crossed", "warning",
                          f"drift on {feature}: {statistic}={value:.4g} > {threshold:.4g}",
                          model, fields=fields)

    def feedback_received(self, *, request_id: str, y_true: Any = None,
                          correct: bool | None = None, **fields: Any) -> int | None:
        model: dict[str, Any] = {}
        if correct is not None:
            model["correct"] = correct
        if y_true is not None and self._shipper is not None and self._shipper.log_outputs:
            model["ground_truth"] = self._clip(y_true)
        return self._emit("feedback-received", "info", "feedback received", model,
                          request_id=request_id, fields=fields)

    def edge_link_lost(self, *, device: str | None = None, reason: str | None = None,
                       **fields: Any) -> int | None:
        model = {"edge": {k: v for k, v in (("device", device), ("reason", reason)) if v}}
        return self._emit("edge-link-lost", "warning", "edge link lost", model,
                          category="network", type_="connection", outcome="failure",
                          fields=fields)

    def edge_link_restored(self, *, device: str | None = None,
                           outage_seconds: float | None = None, backlog: int | None = None,
                           **fields: Any) -> int | None:
        edge = {k: v for k, v in (("device", device), ("outage_seconds", outage_seconds),
                                  ("backlog", backlog)) if v is not None}
        return self._emit("edge-link-restored", "info", "edge link restored", {"edge": edge},
                          category="network", type_="connection", outcome="success",
                          fields=fields)

    # -- helpers ----------------------------------------------------------------

    def _emit(self, action: str, level: str, message: str, model: dict[str, Any], *,
              request_id: str | None = None, category: str | None = None,
              type_: str = "info", outcome: str | None = None,
              duration: float | None = None, extra: Mapping[str, Any] | None = None,
              fields: Mapping[str, Any] | None = None) -> int | None:
        if self._shipper is None:
            return None
        event: dict[str, Any] = {"kind": "event", "action": action, "dataset": "modelmon.model",
                                 "type": [type_]}
        if category:
            event["category"] = [category]
        if outcome:
            event["outcome"] = outcome
        if duration is not None:
            event["duration"] = int(duration * 1e9)  # ECS: nanoseconds
        doc: dict[str, Any] = {
            "@timestamp": timestamp(), "log": {"level": level}, "message": message,
            "event": event, "model": {**self._model, **model},
        }
        if request_id is not None:
            doc["http"] = {"request": {"id": request_id}}
        if extra:
            doc.update(extra)
        if fields:
            doc.update(fields)
        return self._shipper.emit(doc)

    def _add_inputs(self, model: dict[str, Any], inputs: Any) -> None:
        if inputs is not None and self._shipper is not None and self._shipper.log_inputs:
            model["input"] = self._clip(inputs)

    def _clip(self, value: Any) -> str:
        assert self._shipper is not None, "payloads are clipped only when they are shipped"
        limit = self._shipper.max_payload_chars
        text = value if isinstance(value, str) else orjson.dumps(
            value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        if len(text) > limit:
            return text[:limit] + f"...[truncated {len(text) - limit} chars]"
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
