"""A gunicorn app for the exposition conformance test: every KPI family a
quality-enabled model server exports, written by each worker.

Each worker builds a classifier and a regression monitor with a reference
profile; ``POST /traffic`` records predictions with scores, feedback and input
rows so every family has samples in the multiprocess files.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
from flask import Flask

from modelmon.exporters.quality import Profile
from modelmon.exporters.service.flask import instrument_app
from modelmon.exporters.service.monitor import ModelMonitor

_rng = np.random.default_rng(0)
_train = [{"amount": float(a), "country": c}
          for a, c in zip(_rng.normal(0, 1, 500), _rng.choice(["DE", "FR"], 500), strict=True)]
_feedback_db = os.path.join(os.environ["CONFORMANCE_STATE"], "feedback-{pid}.sqlite")

classifier = ModelMonitor(
    "fraud", "2", framework="sklearn", task="classification",
    profile=Profile.from_data(_train, model="fraud", predictions=_rng.choice(["ok", "fraud"], 500),
                              scores=_rng.beta(5, 2, 500)),
    quality_options={"window": 100, "feedback_db": _feedback_db.format(pid=os.getpid())},
)
regressor = ModelMonitor(
    "price", "1", task="regression",
    quality_options={"task": "regression",
                     "feedback_db": _feedback_db.format(pid=f"{os.getpid()}-r")},
)

app = Flask("conformance")
instrument_app(app, classifier)


@app.post("/traffic")
def traffic() -> dict[str, str]:
    ids = [uuid.uuid4().hex for _ in range(3)]
    with classifier.track(batch_size=3):
        classifier.check_inputs([{"amount": 9.0, "country": "IT"}, {"amount": None},
                                 {"amount": "x", "country": "DE"}])
        classifier.record_predictions(["ok", "fraud", "ok"], scores=[[0.9, 0.1], [0.2, 0.8],
                                                                     [0.6, 0.4]], request_ids=ids)
    classifier.record_feedback(ids[0], "ok")
    classifier.record_feedback(ids[1], "ok")
    classifier.record_feedback("unknown-id", "ok")
    regressor.record_predictions([-3.5, 0.0, 12.0], request_ids=ids)  # a negative sum
    regressor.record_feedback(ids[0], 1.0)
    return {"pid": str(os.getpid())}
