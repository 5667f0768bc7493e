"""A model server of the fleet drift tests: one ModelMonitor, rows and predictions posted in.

Run as ``python fleet_app.py PORT`` (one process) or under gunicorn
(``fleet_app:app``, multiprocess mode). ``FLEET_PROFILE`` is the profile path.
"""

from __future__ import annotations

import os
import sys

from flask import Flask, jsonify, request

from modelmon import ModelMonitor, instrument_app

MODEL, VERSION = "fleet-model", "2"

monitor = ModelMonitor(
    MODEL, VERSION, profile=os.environ["FLEET_PROFILE"],
    quality_options={"window": 1_000_000, "feedback_db": ":memory:"},
)
app = Flask("fleet")
instrument_app(app, monitor)


@app.get("/healthz")
def healthz() -> object:
    return "ok"


@app.post("/observe")
def observe() -> object:
    body = request.get_json()
    monitor.check_inputs(body["rows"])
    monitor.record_predictions(body["predictions"], scores=body["scores"])
    return jsonify(pid=os.getpid())


if __name__ == "__main__":
    from werkzeug.serving import make_server

    make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
