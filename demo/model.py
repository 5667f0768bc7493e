"""The demo's model server: a real scikit-learn model behind an instrumented Flask app.

``create_demo_app()`` is a WSGI app factory for gunicorn. The model is
trained at start-up on a generated data set (no download), so the demo runs on
a machine with no network.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import uuid
from typing import Any

import numpy as np
from flask import Flask, jsonify, request

from modelmon.demo.names import MODEL_NAME  # shared with the scenarios
from modelmon.exporters.service.flask import instrument_app
from modelmon.exporters.service.monitor import InferenceRejected, ModelMonitor

MODEL_VERSION = "1.0.0"
FEATURES = ("amount", "age_days", "n_items", "hour", "distance_km", "velocity", "score_a", "score_b")


def make_dataset(n: int = 2000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n, n_features=len(FEATURES), n_informative=5, n_redundant=1,
        weights=[0.85, 0.15], random_state=seed,
    )
    return X, y


def train_model() -> tuple[Any, Any]:
    """The model and the reference profile of its training data."""
    from sklearn.linear_model import LogisticRegression

    from modelmon.exporters.quality.profile import Profile

    X, y = make_dataset()
    model = LogisticRegression(max_iter=500).fit(X, y)
    profile = Profile.from_data(
        X, feature_names=FEATURES, model=MODEL_NAME,
        predictions=model.predict(X), scores=model.predict_proba(X)[:, 1],
    )
    return model, profile


def _rows_to_matrix(rows: Any) -> np.ndarray:
    if not isinstance(rows, list) or not rows:
        raise InferenceRejected("instances: expected a non-empty list of feature objects")
    matrix = np.empty((len(rows), len(FEATURES)))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InferenceRejected(f"instances[{i}]: expected an object of features")
        for j, name in enumerate(FEATURES):
            value = row.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InferenceRejected(f"instances[{i}].{name}: expected a number, got {value!r}")
            matrix[i, j] = value
    return matrix


def _log_shipper(registry: Any) -> Any:
    """Events to Elasticsearch when MODELMON_DEMO_ES_URL is set (the compose
    stack), to Logstash's http input when MODELMON_DEMO_LOGSTASH_URL is, else to
    a JSON-lines file in MODELMON_DEMO_LOG_DIR (or a temp dir)."""
    from modelmon.exporters.logs import LogShipper

    log_dir = os.environ.get("MODELMON_DEMO_LOG_DIR") or os.path.join(
        tempfile.gettempdir(), f"modelmon-demo-logs-{os.getppid()}"
    )
    es_url = os.environ.get("MODELMON_DEMO_ES_URL")
    logstash_url = os.environ.get("MODELMON_DEMO_LOGSTASH_URL")
    common = {"spool_dir": os.path.join(log_dir, "spool"), "service_name": "fraud-detector",
              "registry": registry}
    if es_url:
        return LogShipper("elasticsearch", url=es_url, **common)
    if logstash_url:
        return LogShipper("logstash_http", url=logstash_url, **common)
    return LogShipper("file", path=os.path.join(log_dir, "events.jsonl"), **common)


class _Faults:
    """The injected faults, shared by the workers through a small JSON file."""

    KEYS = ("rate", "latency", "latency_share")

    def __init__(self, path: str) -> None:
        self.path = path
        self._state = dict.fromkeys(self.KEYS, 0.0)
        self._read_at = 0.0

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        if now - self._read_at > 0.25:
            self._read_at = now
            try:
                with open(self.path) as f:
                    data = json.load(f)
                self._state = {key: float(data.get(key, 0)) for key in self.KEYS}
            except (OSError, ValueError, TypeError, AttributeError):
                pass  # no file yet, or a half-written one: keep the last state
        return self._state

    def write(self, state: dict[str, float]) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.path)
        self._read_at = 0.0


def create_demo_app(registry: Any = None) -> Flask:
    import sklearn

    start = time.perf_counter()
    model, profile = train_model()
    # Workers share one feedback store, so a label can join a prediction that
    # another worker served.
    feedback_db = os.environ.get("MODELMON_DEMO_FEEDBACK_DB") or os.path.join(
        tempfile.gettempdir(), f"modelmon-demo-feedback-{os.getppid()}.sqlite"
    )
    mon = ModelMonitor(
        MODEL_NAME, version=MODEL_VERSION, framework="sklearn",
        framework_version=sklearn.__version__, task="classification", registry=registry,
        profile=profile,
        quality_options={
            "window": 2000, "feedback_db": feedback_db,
            # Accuracy over the last N joined labels: the demo keeps N small so
            # a drop shows (and recovers) within seconds.
            "feedback_window": int(os.environ.get("MODELMON_DEMO_FEEDBACK_WINDOW", "1000")),
        },
        logs=_log_shipper(registry),
    )
    load_seconds = time.perf_counter() - start
    mon.record_model_load(load_seconds)
    mon.log.model_loaded(duration_seconds=load_seconds, source="trained at start-up")
    # Fault injection for the demo's error, latency bursts: the traffic generator
    # sets them (POST /fault) so the dashboards and alerts have something to show.
    # They live in a file that every gunicorn worker reads, so one POST reaches all.
    faults = _Faults(os.environ.get("MODELMON_DEMO_CONTROL") or os.path.join(
        tempfile.gettempdir(), f"modelmon-demo-control-{os.getppid()}.json"))
    if os.environ.get("MODELMON_DEMO_FAULT_RATE"):
        faults.write({"rate": float(os.environ["MODELMON_DEMO_FAULT_RATE"])})

    app = Flask("modelmon.demo")

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json(silent=True) or {}
        instances = body.get("instances")
        try:
            started = time.perf_counter()
            with mon.track(batch_size=len(instances or [])) as t:
                mon.check_inputs(instances)  # counts quality problems; never raises
                X = _rows_to_matrix(instances)
                state = faults.read()
                if random.random() < state["rate"]:
                    raise RuntimeError("simulated accelerator fault")
                if state["latency"] and random.random() < state["latency_share"]:
                    time.sleep(state["latency"])  # a slow accelerator, not a failing one
                proba = model.predict_proba(X)[:, 1]
                predictions = [int(p > 0.5) for p in proba]
                ids = body.get("request_ids") or [uuid.uuid4().hex for _ in predictions]
                mon.record_predictions(predictions, scores=proba, request_ids=ids)
                t.response_bytes = 32 * len(proba)
        except InferenceRejected as exc:
            mon.log.input_rejected([str(exc)], message=f"input rejected: {exc}")
            return jsonify(error=str(exc)), 400
        except RuntimeError as exc:
            mon.log.error(exc)
            return jsonify(error=str(exc)), 500
        mon.log.prediction(time.perf_counter() - started, batch_size=len(predictions),
                           prediction=predictions[0], score=float(proba[0]))
        return jsonify(predictions=predictions, scores=[float(p) for p in proba], request_ids=ids)

    @app.post("/feedback")
    def feedback() -> Any:
        body = request.get_json(silent=True) or {}
        if "request_id" not in body or "label" not in body:
            return jsonify(error="expected request_id and label"), 400
        mon.record_feedback(str(body["request_id"]), body["label"])
        mon.log.feedback_received(request_id=str(body["request_id"]), y_true=body["label"])
        return jsonify(status="ok")

    @app.post("/fault")
    def fault() -> Any:
        body = request.get_json(silent=True) or {}
        try:
            state = {key: float(body.get(key, 0)) for key in _Faults.KEYS}
        except (TypeError, ValueError):
            return jsonify(error=f"expected numbers for {', '.join(_Faults.KEYS)}"), 400
        faults.write(state)
        return jsonify(**state)

    @app.get("/healthz")
    def healthz() -> Any:
        return "ok\n"

    instrument_app(app, mon)
    app.extensions["modelmon_monitor"] = mon
    app.extensions["modelmon_started"] = time.time()
    return app
