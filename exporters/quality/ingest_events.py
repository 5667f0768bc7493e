"""``prediction`` and ``feedback`` events for ``POST /ingest`` (docs/quality.md).

``ingest_parsers(monitor_for)`` gives the service one parser per event type;
a parser validates an event and returns the function that applies it, so the
service can refuse a whole request before recording anything.
``handle_event(event, monitor_for)`` validates and applies one event.
Errors raise ``InvalidQualityEvent`` (a ValueError) naming the field.

prediction::

    {"type": "prediction", "model": "fraud", "version": "3.1.0",
     "prediction": "fraud",            # class (string / integer / boolean) or number
     "score": 0.93,                    # optional: confidence in [0, 1], or
     "scores": [0.07, 0.93],           #   optional: class probabilities (top one is used)
     "request_id": "req-42",           # optional: to join late feedback
     "features": {"amount": 12.5},     # optional: runs check_inputs on this row
     "timestamp": 1718000000.0}        # optional, unix seconds (accepted, not back-dated)

feedback::

    {"type": "feedback", "model": "fraud", "version": "3.1.0",
     "request_id": "req-42", "label": "legit", "timestamp": 1718003600.0}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from modelmon.labels import MAX_EVENT_STRING, event_text_problem, label_value_problem, safe_text

MAX_STRING = MAX_EVENT_STRING
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The largest integer a float holds exactly: counters and histograms are floats.
MAX_INTEGER = 2**53
MAX_FEATURES = 1000
MAX_SCORES = 1000

PREDICTION_FIELDS = frozenset({
    "type", "model", "version", "prediction", "score", "scores", "request_id", "features",
    "timestamp",
})
FEEDBACK_FIELDS = frozenset({"type", "model", "version", "request_id", "label", "timestamp"})

class QualityRecorder(Protocol):
    """What an event is applied to: the ModelMonitor of its model and version."""

    def check_inputs(self, X: object) -> None: ...
    def record_predictions(
        self, y_pred: object, scores: object = None, request_ids: object = None
    ) -> None: ...
    def record_feedback(self, request_id: str, y_true: object) -> None: ...


MonitorFor = Callable[[str, str], QualityRecorder]
Applier = Callable[[], None]


class InvalidQualityEvent(ValueError):
    """A prediction/feedback event field is wrong; ``str()`` names the field."""


def ingest_parsers(monitor_for: MonitorFor) -> dict[str, Callable[[Mapping[str, Any]], Applier]]:
    """{"prediction": parser, "feedback": parser} for the /ingest service."""
    return {
        "prediction": lambda event: parse_prediction(event, monitor_for),
        "feedback": lambda event: parse_feedback(event, monitor_for),
    }


def handle_event(event: Mapping[str, Any], monitor_for: MonitorFor) -> None:
    """Validate and apply one prediction or feedback event."""
    if not isinstance(event, Mapping):
        raise InvalidQualityEvent(f"body: expected a JSON object, got {type(event).__name__}")
    kind = event.get("type")
    if kind == "prediction":
        parse_prediction(event, monitor_for)()
    elif kind == "feedback":
        parse_feedback(event, monitor_for)()
    else:
        raise InvalidQualityEvent(f"type: expected 'prediction' or 'feedback', got {kind!r}")


def parse_prediction(event: Mapping[str, Any], monitor_for: MonitorFor) -> Applier:
    _no_unknown(event, PREDICTION_FIELDS, "prediction")
    model, version = _identity(event)
    if "prediction" not in event:
        raise InvalidQualityEvent(
            "prediction: required, the predicted class (string, integer, boolean) or value (number)"
        )
    prediction = _label(event["prediction"], "prediction")
    score = event.get("score")
    scores = event.get("scores")
    if score is not None and scores is not None:
        raise InvalidQualityEvent("scores: give either score or scores, not both")
    if score is not None:
        score = _finite(score, "score")
        if not 0.0 <= score <= 1.0:
            raise InvalidQualityEvent(f"score: expected a confidence in [0, 1], got {score!r}")
    if scores is not None:
        if (not isinstance(scores, list) or not scores or len(scores) > MAX_SCORES):
            raise InvalidQualityEvent(
                f"scores: expected a non-empty list of at most {MAX_SCORES} probabilities"
            )
        scores = [_finite(s, f"scores[{i}]") for i, s in enumerate(scores)]
    request_id = _optional_string(event, "request_id")
    features = event.get("features")
    if features is not None:
        if not isinstance(features, dict):
            raise InvalidQualityEvent(
                "features: expected an object of feature name to value, got "
                f"{type(features).__name__}"
            )
        if len(features) > MAX_FEATURES:
            raise InvalidQualityEvent(f"features: more than {MAX_FEATURES} features")
        for name, value in features.items():
            _text(name, "features: a feature name")
            _feature_value(value, "features." + (
                name if _PLAIN_NAME.fullmatch(name) else safe_text(name)))
    _timestamp(event)

    def apply() -> None:
        mon = monitor_for(model, version)
        if features is not None:
            mon.check_inputs(features)
        row_scores = None if score is None and scores is None else (
            [score] if score is not None else [scores]
        )
        mon.record_predictions(
            [prediction], scores=row_scores,
            request_ids=None if request_id is None else [request_id],
        )

    return apply


def parse_feedback(event: Mapping[str, Any], monitor_for: MonitorFor) -> Applier:
    _no_unknown(event, FEEDBACK_FIELDS, "feedback")
    model, version = _identity(event)
    request_id = _optional_string(event, "request_id")
    if request_id is None:
        raise InvalidQualityEvent(
            "request_id: required, the id sent with the prediction event this label belongs to"
        )
    if "label" not in event:
        raise InvalidQualityEvent(
            "label: required, the true class (string, integer, boolean) or value (number)"
        )
    label = _label(event["label"], "label")
    _timestamp(event)

    def apply() -> None:
        monitor_for(model, version).record_feedback(request_id, label)

    return apply


# -- field checks ------------------------------------------------------------------


def _no_unknown(event: Mapping[str, Any], known: frozenset[str], kind: str) -> None:
    unknown = sorted(set(event) - known)
    if unknown:
        name = unknown[0]
        # A plain name is shown as sent; anything else quoted and escaped, so the
        # message still starts with one token naming the field.
        shown = name if _PLAIN_NAME.fullmatch(name) else safe_text(name)
        raise InvalidQualityEvent(
            f"{shown}: unknown field for a {kind} event; known fields are "
            f"{', '.join(sorted(known))}"
        )


def _text(value: Any, field: str) -> str:
    """A non-empty printable string of at most MAX_STRING characters (see modelmon.labels)."""
    problem = event_text_problem(value)
    if problem is not None:
        raise InvalidQualityEvent(f"{field}: {problem}")
    return str(value)


def _identity(event: Mapping[str, Any]) -> tuple[str, str]:
    if "model" not in event:
        raise InvalidQualityEvent(
            f"model: required, a non-empty string of at most {MAX_STRING} characters"
        )
    return _text(event["model"], "model"), _text(event.get("version", "unknown"), "version")


def _label(value: Any, field: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, field)
    if isinstance(value, int | float):
        _finite(value, field)
        return value
    raise InvalidQualityEvent(
        f"{field}: expected a class (string, integer, boolean) or a finite number, got "
        f"{safe_text(value)}"
    )


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidQualityEvent(f"{field}: expected a finite number, got {safe_text(value)}")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise InvalidQualityEvent(
            f"{field}: expected a number of magnitude at most 2**53, got {safe_text(value)}"
        )
    if not math.isfinite(value):
        raise InvalidQualityEvent(f"{field}: expected a finite number, got {safe_text(value)}")
    return float(value)


def _feature_value(value: Any, field: str) -> None:
    """A feature is a number, a string (a category), a boolean or null (missing)."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING or label_value_problem(value) is not None:
            raise InvalidQualityEvent(
                f"{field}: expected printable text of at most {MAX_STRING} characters, got "
                f"{safe_text(value)}"
            )
        return
    if isinstance(value, int | float):
        _finite(value, field)
        return
    raise InvalidQualityEvent(
        f"{field}: expected a number, a string, a boolean or null, got {safe_text(value)}"
    )


def _optional_string(event: Mapping[str, Any], field: str) -> str | None:
    value = event.get(field)
    if value is None:
        return None
    return _text(value, field)


def _timestamp(event: Mapping[str, Any]) -> None:
    value = event.get("timestamp")
    if value is not None:
        _finite(value, "timestamp")
