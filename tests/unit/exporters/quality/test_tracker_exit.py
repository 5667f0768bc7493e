"""Predictions still queued when the process exits reach the feedback store
(issue 12 finding 9, the Python API side): a model server restarted right
after predicting still joins the labels that arrive later."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from prometheus_client import CollectorRegistry

from modelmon.exporters.service.monitor import ModelMonitor

SCRIPT = """
import sys
from prometheus_client import CollectorRegistry
from modelmon.exporters.service.monitor import ModelMonitor

mon = ModelMonitor("fraud", "1", registry=CollectorRegistry(),
                   quality_options={"feedback_db": sys.argv[1]})
for i in range(0, 3000, 10):
    mon.record_predictions(["legit"] * 10, request_ids=[f"r{i + j}" for j in range(10)])
sys.exit(0)  # at once, as a gunicorn worker does on SIGTERM
"""


def test_queued_predictions_are_written_when_the_process_exits(tmp_path):
    db = tmp_path / "feedback.sqlite"
    subprocess.run([sys.executable, "-c", SCRIPT, str(db)], check=True, timeout=120)
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM predictions").fetchone()
    assert rows == 3000


def test_closing_twice_is_harmless(tmp_path):
    mon = ModelMonitor("m", registry=CollectorRegistry(),
                       quality_options={"feedback_db": str(tmp_path / "f.sqlite")})
    mon.record_predictions(["a"], request_ids=["r1"])
    mon.close()
    mon.close()
    mon.quality.close()
