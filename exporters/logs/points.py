"""The AI pipeline's critical logging points: ``mon.log.<point>(...)``.

Each point is one ECS event with ``event.action`` naming the point, the model
under ``model.*`` (name, version, framework) and the request's correlation id
as ``trace.id``. Model inputs and outputs are logged only when the shipper was
configured with ``log_inputs`` / ``log_outputs``, and then truncated to
``max_payload_chars``. Every value goes through ``fields``, so the document fits
ECS and the index template whatever it is given, and a point never raises.

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
``edge_alert``              ``edge-alert``                    warning/info
``edge_bundle_applied``     ``edge-bundle-applied``           info
``edge_bundle_refused``     ``edge-bundle-refused``           error
==========================  ================================  ==========
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from modelmon.exporters.logs.ecs import error_fields, timestamp
from modelmon.exporters.logs.fields import (
    add_extra,
    count,
    fits,
    flag,
    keyword,
    nanoseconds,
    number,
    score_fields,
)

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
            "name": keyword(monitor.model), "version": keyword(monitor.version),
            "framework": keyword(monitor.framework),
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
        model = _present(batch_size=count(batch_size))
        self._add_inputs(model, inputs)
        extra = {"url": {"path": _text(route)}} if _text(route) else {}
        # ECS's web category expects access, error or info (not start).
        return self._emit("request-received", "info", "request received", model,
                          request_id=request_id, category="web", type_="access", extra=extra,
                          fields=fields)

    def input_rejected(self, violations: Sequence[Any] | Mapping[str, Any], *,
                       request_id: str | None = None, inputs: Any = None,
                       message: str | None = None, **fields: Any) -> int | None:
        # Objects, each of them: the flattened mapping refuses a bare value.
        if isinstance(violations, Mapping):
            listed = [{"check": _plain(keyword(k)), "detail": _plain(v)}
                      for k, v in violations.items()]
        elif isinstance(violations, str | bytes) or not isinstance(violations, Sequence):
            listed = [{"detail": _plain(violations)}]
        else:
            listed = [_plain(v) if isinstance(v, Mapping) else {"detail": _plain(v)}
                      for v in violations]
        model: dict[str, Any] = {"violations": listed, "violation_count": len(listed)}
        self._add_inputs(model, inputs)
        return self._emit("input-rejected", "warning",
                          (_text(message) or f"input rejected: {len(listed)} quality violation(s)"),
                          model, request_id=request_id, outcome="failure", fields=fields)

    def prediction(self, latency_seconds: float, *, outcome: str = "success",
                   prediction: Any = None, score: Any = None, inputs: Any = None,
                   request_id: str | None = None, batch_size: int | None = None,
                   **fields: Any) -> int | None:
        outcome = keyword(outcome)
        latency = number(latency_seconds)
        model = _present(outcome=outcome, latency_seconds=latency, batch_size=count(batch_size))
        self._add_inputs(model, inputs)
        if self._shipper is not None and self._shipper.log_outputs:
            if prediction is not None:
                model["prediction"] = self._clip(prediction)
            if score is not None:
                scored = score_fields(score, self._shipper.max_payload_chars)
                if "score_text" in scored:
                    scored["score_text"] = self._clip(scored["score_text"])
                model.update(scored)
        ok = outcome == "success"
        return self._emit(
            "prediction", "info" if ok else "error", f"prediction {outcome}", model,
            request_id=request_id, outcome="success" if ok else "failure",
            duration=latency, fields=fields,
        )

    def error(self, exc: BaseException | None = None, *, message: str | None = None,
              request_id: str | None = None, **fields: Any) -> int | None:
        extra: dict[str, Any] = {}
        if exc is not None:
            extra["error"] = error_fields(exc)
        text = _text(message) or (
            f"{type(exc).__name__}: {extra['error']['message']}" if exc is not None else "error")
        return self._emit("error", "error", text, {}, request_id=request_id,
                          outcome="failure", extra=extra, fields=fields)

    def model_loaded(self, *, duration_seconds: float | None = None, source: str | None = None,
                     **fields: Any) -> int | None:
        model = _present(source=_text(source))
        return self._emit("model-loaded", "info", f"model {self._model['name']} "
                          f"{self._model['version']} loaded", model, category="configuration",
                          type_="creation", duration=number(duration_seconds), fields=fields)

    def model_reloaded(self, *, previous_version: str | None = None,
                       duration_seconds: float | None = None, **fields: Any) -> int | None:
        model = _present(previous_version=_text(previous_version))
        return self._emit("model-reloaded", "info", f"model {self._model['name']} reloaded "
                          f"as {self._model['version']}", model, category="configuration",
                          type_="change", duration=number(duration_seconds), fields=fields)

    def model_rolled_back(self, *, from_version: str, reason: str | None = None,
                          **fields: Any) -> int | None:
        model = _present(rolled_back_from=keyword(from_version), rollback_reason=_text(reason))
        return self._emit("model-rolled-back", "warning", f"model {self._model['name']} rolled "
                          f"back from {model['rolled_back_from']} to {self._model['version']}",
                          model,
                          category="configuration", type_="change", fields=fields)

    def drift_detected(self, *, feature: str, statistic: str, value: float, threshold: float,
                       **fields: Any) -> int | None:
        drift = _present(feature=keyword(feature), statistic=keyword(statistic),
                         value=number(value), threshold=number(threshold))
        return self._emit("drift-threshold-crossed", "warning",
                          f"drift on {drift['feature']}: {drift['statistic']}={_short(value)} > "
                          f"{_short(threshold)}", {"drift": drift}, fields=fields)

    def feedback_received(self, *, request_id: str, y_true: Any = None,
                          correct: bool | None = None, **fields: Any) -> int | None:
        model = _present(correct=flag(correct))
        if y_true is not None and self._shipper is not None and self._shipper.log_outputs:
            model["ground_truth"] = self._clip(y_true)
        return self._emit("feedback-received", "info", "feedback received", model,
                          request_id=request_id, fields=fields)

    def edge_link_lost(self, *, device: str | None = None, reason: str | None = None,
                       **fields: Any) -> int | None:
        model = {"edge": _present(device=_text(device), reason=_text(reason))}
        return self._emit("edge-link-lost", "warning", "edge link lost", model,
                          category="network", type_="connection", outcome="failure",
                          fields=fields)

    def edge_link_restored(self, *, device: str | None = None,
                           outage_seconds: float | None = None, backlog: int | None = None,
                           **fields: Any) -> int | None:
        edge = _present(device=_text(device),
                        outage_seconds=number(outage_seconds), backlog=count(backlog))
        return self._emit("edge-link-restored", "info", "edge link restored", {"edge": edge},
                          category="network", type_="connection", outcome="success",
                          fields=fields)

    def edge_alert(self, *, alert: Mapping[str, Any], device: str | None = None,
                   **fields: Any) -> int | None:
        """An alert of the device's rules started firing (warning) or resolved (info);
        ``alert`` is the Alertmanager API v2 alert with ``status``."""
        raw = alert.get("labels")
        labels = {keyword(k): keyword(v) for k, v in raw.items()
                  if fits("model.edge.alert.labels", {keyword(k): ""})} \
            if isinstance(raw, Mapping) else {}
        status = _text(alert.get("status"))
        info = _present(
            name=_text(labels.get("alertname")), status=status,
            starts_at=_date(alert.get("startsAt")), ends_at=_date(alert.get("endsAt")),
            generator_url=_text(alert.get("generatorURL")), labels=labels or None)
        firing = status == "firing"
        return self._emit("edge-alert", "warning" if firing else "info",
                          f"edge alert {info.get('name', '')} {status or ''}".strip(),
                          {"edge": {**_present(device=_text(device)), "alert": info}},
                          type_="start" if firing else "end", fields=fields)

    def edge_bundle_applied(self, *, version: str, sha256: str, source: str | None = None,
                            signed: bool | None = None, previous_version: str | None = None,
                            device: str | None = None, **fields: Any) -> int | None:
        """A configuration bundle now runs on the device (pulled, imported or restored
        from disk at start); ``previous_version`` is the one it replaced."""
        bundle = _present(version=_text(version), sha256=_text(sha256), source=_text(source),
                          signed=flag(signed), previous_version=_text(previous_version))
        return self._emit("edge-bundle-applied", "info",
                          f"edge bundle {bundle['version']} applied" if "version" in bundle
                          else "edge bundle applied",
                          {"edge": {**_present(device=_text(device)), "bundle": bundle}},
                          category="configuration", type_="change", outcome="success",
                          fields=fields)

    def edge_bundle_refused(self, *, reason: str, message: str, source: str | None = None,
                            version: str | None = None, sha256: str | None = None,
                            running_version: str | None = None,
                            running_sha256: str | None = None, device: str | None = None,
                            **fields: Any) -> int | None:
        """A bundle failed a check and was not applied: ``reason`` is the refusal's label
        (``event.reason``), ``message`` what to fix (``error.message``); ``version`` and
        ``sha256`` are the refused bundle's where its manifest could be read, the
        ``running_*`` ones the bundle that keeps running."""
        bundle = _present(version=_text(version), sha256=_text(sha256), source=_text(source),
                          running_version=_text(running_version),
                          running_sha256=_text(running_sha256))
        text = _text(message)
        return self._emit("edge-bundle-refused", "error",
                          f"edge bundle refused ({_text(reason) or 'unknown'})",
                          {"edge": {**_present(device=_text(device)), "bundle": bundle}},
                          category="configuration", type_="change", outcome="failure",
                          reason=_text(reason),
                          extra={"error": {"message": text}} if text else None,
                          fields=fields)

    # -- helpers ----------------------------------------------------------------

    def _emit(self, action: str, level: str, message: str, model: dict[str, Any], *,
              request_id: str | None = None, category: str | None = None,
              type_: str = "info", outcome: str | None = None,
              duration: float | None = None, extra: Mapping[str, Any] | None = None,
              reason: str | None = None,
              fields: Mapping[str, Any] | None = None) -> int | None:
        if self._shipper is None:
            return None
        event: dict[str, Any] = {"kind": "event", "action": action, "dataset": "modelmon.model",
                                 "type": [type_]}
        if category:
            event["category"] = [category]
        if outcome:
            event["outcome"] = outcome
        if reason:
            event["reason"] = reason
        if duration is not None:
            event["duration"] = nanoseconds(duration)
        doc: dict[str, Any] = {
            "@timestamp": timestamp(), "log": {"level": level}, "message": message,
            "event": event, "model": {**self._model, **model},
        }
        if request_id is not None:
            doc["http"] = {"request": {"id": keyword(request_id)}}
        if extra:
            doc.update(extra)
        for key, value in (fields or {}).items():
            add_extra(doc, key, value)
        return self._shipper.emit(doc)

    def _add_inputs(self, model: dict[str, Any], inputs: Any) -> None:
        if inputs is not None and self._shipper is not None and self._shipper.log_inputs:
            model["input"] = self._clip(inputs)

    def _clip(self, value: Any) -> str:
        assert self._shipper is not None, "payloads are clipped only when they are shipped"
        limit = self._shipper.max_payload_chars
        text = keyword(value)
        if len(text) > limit:
            return text[:limit] + f"...[truncated {len(text) - limit} chars]"
        return text


# A flattened field indexes each leaf as "<key>\0<value>", one Lucene term of
# at most 32766 bytes, and refuses the document beyond: 4096 characters are at
# most 16 KiB of UTF-8.
_MAX_DETAIL_CHARS = 4096
_MAX_KEY_CHARS = 256


def _plain(value: Any, depth: int = 0) -> Any:
    """A violation's detail for the flattened mapping: finite scalars, nested
    objects up to a depth Elasticsearch accepts (20), keys without the \\0 it
    reserves, anything else as text; text clipped to one indexable term."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return number(value) if number(value) is not None else keyword(value)
    if isinstance(value, Mapping) and depth < 8:
        return {keyword(k).replace("\0", "")[:_MAX_KEY_CHARS]: _plain(v, depth + 1)
                for k, v in value.items()}
    text = keyword(value)
    if len(text) > _MAX_DETAIL_CHARS:
        return text[:_MAX_DETAIL_CHARS] + f"...[truncated {len(text) - _MAX_DETAIL_CHARS} chars]"
    return text


def _text(value: Any) -> str | None:
    """A keyword for an optional field: None when not given or empty."""
    return None if value is None else keyword(value) or None


def _present(**values: Any) -> dict[str, Any]:
    """The fields that have a value (a value that did not fit its type is None)."""
    return {k: v for k, v in values.items() if v is not None}


def _date(value: Any) -> str | None:
    """An RFC 3339 time for a ``date`` field, or None."""
    if not isinstance(value, str):
        return None
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _short(value: Any) -> str:
    n = number(value)
    return f"{n:.4g}" if n is not None else keyword(value)[:40]
