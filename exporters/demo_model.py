"""The demo's model server: a real scikit-learn model behind an instrumented Flask app.

``create_demo_app()`` is a WSGI app factory for gunicorn. The model is
trained at start-up on a generated data set (no download), so the demo runs on
a machine with no network.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import numpy as np
from flask import Flask, jsonify, request
from modelmon.exporters.flask import instrument_app
from modelmon.exporters.monitor import InferenceRejected, ModelMonitor

MODEL_NAME = "fraud-detector"
MODEL_VERSION = "1.0.0"
FEATURES = ("amount", "age_days", "n_items", "hour", "distance_km", "velocity", "score_a", "score_b")


def make_dataset(n: int = 2000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n, n_features=len(FEATURES), n_informative=5, n_redundant=1,
        weights=[0.85, 0.15], random_state=seed,
    )
    return X, y


def train_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = make_dataset()
    return LogisticRegression(max_iter=500).fit(X, y)


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


def create_demo_app(registry: Any = None) -> Flask:
    import sklearn

    mon = ModelMonitor(
        MODEL_NAME, version=MODEL_VERSION, framework="sklearn",
        framework_version=sklearn.__version__, task="classification", registry=registry,
    )
    with mon.loading():
        model = train_model()
    # Fault injection for the demo's error bursts: the traffic generator
    # flips it so the dashboards and alerts have something to show.
    fault_rate = float(os.environ.get("MODELMON_DEMO_FAULT_RATE", "0"))
    state = {"fault_rate": fault_rate}

    app = Flask("modelmon.demo")

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json(silent=True) or {}
        try:
            with mon.track(batch_size=len(body.get("instances") or [])) as t:
                X = _rows_to_matrix(body.get("instances"))
                if random.random() < state["fault_rate"]:
                    raise RuntimeError("simulated accelerator fault")
                proba = model.predict_proba(X)[:, 1]
                t.response_bytes = 32 * len(proba)
        except InferenceRejected as exc:
            return jsonify(error=str(exc)), 400
        except RuntimeError as exc:
            return jsonify(error=str(exc)), 500
        return jsonify(predictions=[int(p > 0.5) for p in proba], scores=[float(p) for p in proba])

    @app.post("/fault")
    def fault() -> Any:
        state["fault_rate"] = float((request.get_json(silent=True) or {}).get("rate", 0))
        return jsonify(fault_rate=state["fault_rate"])

    @app.get("/healthz")
    def healthz() -> Any:
        return "ok\n"

    instrument_app(app, mon)
    app.extensions["modelmon_monitor"] = mon
    app.extensions["modelmon_started"] = time.time()
    return app
