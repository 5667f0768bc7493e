"""A model server of the fleet accuracy tests: a classifier and a regressor whose
predictions and ground-truth labels are posted in.

Run as ``python feedback_app.py PORT`` (one process) or under gunicorn
(``feedback_app:app``, multiprocess mode). ``FEEDBACK_DIR`` holds the feedback
stores: one SQLite file per model, shared by the workers of one server, so a
label joins its prediction whichever worker gets it.
"""

from __future__ import annotations

import os
import sys

from flask import Flask, jsonify, request

from modelmon import ModelMonitor, instrument_app

VERSION = "4"
_DIR = os.environ["FEEDBACK_DIR"]

monitors = {
    task: ModelMonitor(
        f"fleet-{task}", VERSION,
        quality_options={"task": task, "feedback_db": os.path.join(_DIR, f"{task}.sqlite")},
    )
    for task in ("classification", "regression")
}
app = Flask("feedback")
instrument_app(app, monitors["classification"])


@app.get("/healthz")
def healthz() -> object:
    return "ok"


@app.post("/predict/<task>")
def predict(task: str) -> object:
    body = request.get_json()
    monitor = monitors[task]
    monitor.record_predictions(body["predictions"], request_ids=body["ids"])
    # Stored before the answer, so a label posted afterwards finds its prediction
    # on whichever worker receives it.
    monitor.quality.flush()
    return jsonify(pid=os.getpid())


@app.post("/feedback/<task>")
def feedback(task: str) -> object:
    body = request.get_json()
    monitor = monitors[task]
    for request_id, label in zip(body["ids"], body["labels"], strict=True):
        monitor.record_feedback(request_id, label)
    monitor.quality.flush()  # joined and counted before the answer
    return jsonify(pid=os.getpid())


if __name__ == "__main__":
    from werkzeug.serving import make_server

    make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
