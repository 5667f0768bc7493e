"""gunicorn with several workers (prometheus_client multiprocess mode): a real
Prometheus sees totals equal to the requests sent across all workers."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from modelmon.demo.model import FEATURES, MODEL_NAME
from modelmon.demo.processes import prometheus_config, running_prometheus

HERE = Path(__file__).resolve().parent
N = 240


def test_totals_are_equal_across_workers(start_server, tmp_path, prometheus_binary):
    app = start_server(
        [sys.executable, "-m", "gunicorn", "-c", "python:modelmon.exporters.service.gunicorn_config",
         "--workers", "3", "--threads", "2", "--pythonpath", str(HERE),
         "--bind", "127.0.0.1:{port}", "mw_app:app"],
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc")},
    )
    row = {name: 0.1 for name in FEATURES}

    def call(i: int) -> str:
        with requests.post(f"{app.url}/predict", json={"instances": [row] * (1 + i % 3)},
                           timeout=30) as r:
            assert r.status_code == 200
            return r.headers["X-Worker-Pid"]

    # /healthz answers once the first worker is up; the others may still be
    # training their model. Keep sending (bounded) until several have answered,
    # and count every request sent.
    pids: set[str] = set()
    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        while (sent < N or len(pids) < 2) and time.monotonic() < deadline:
            pids |= set(pool.map(call, range(sent, sent + 24)))
            sent += 24
    assert len(pids) >= 2, "the load did not reach several workers within 60 s"

    target = app.url.removeprefix("http://")
    with running_prometheus(prometheus_config([target]), binary=prometheus_binary,
                            workdir=tmp_path / "prom") as prom:
        result = prom.wait_for(
            f'modelmon_inference_requests_total{{model="{MODEL_NAME}",outcome="success"}}')
        assert float(result[0]["value"][1]) == sent
        batch = prom.query(f'modelmon_inference_batch_size_sum{{model="{MODEL_NAME}"}}')
        assert float(batch[0]["value"][1]) == sum(1 + i % 3 for i in range(sent))
        http = prom.query('sum(modelmon_http_requests_total{endpoint="/predict",status="200"})')
        assert float(http[0]["value"][1]) == sent
        in_flight = prom.query(f'modelmon_inference_in_flight{{model="{MODEL_NAME}"}}')
        assert [float(r["value"][1]) for r in in_flight] == [0.0], "livesum: one series, 0"
        info = prom.query(f'modelmon_model_info{{model="{MODEL_NAME}"}}')
        assert len(info) == 1 and float(info[0]["value"][1]) == 1.0
