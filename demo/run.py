"""``modelmon demo``: a live, local model-monitoring stack in one command.

It starts, each as its own process on 127.0.0.1:
- the demo model server (``modelmon.demo.model``: scikit-learn behind Flask) on gunicorn
  with 2 workers in prometheus_client multiprocess mode;
- ``modelmon serve``, fed with /ingest events as a non-Python server would;
- Prometheus scraping both, when the ``prometheus`` binary is installed;
and drives synthetic traffic with periodic error bursts until Ctrl-C (or
``--duration``).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import cast

import requests
import yaml

from modelmon.demo.model import FEATURES
from modelmon.demo.processes import (
    INSTALL_HINT,
    PrometheusProcess,
    find_binary,
    free_port,
    prometheus_config,
    start_prometheus,
    stop_processes,
    wait_http_ok,
)

INGEST_MODEL = "recommender-java"


@dataclass
class DemoPorts:
    app: int
    exporter: int
    prometheus: int

    @classmethod
    def resolve(cls, app: int, exporter: int, prometheus: int) -> DemoPorts:
        return cls(app or free_port(), exporter or free_port(), prometheus or free_port())


class Traffic:
    """Synthetic clients: the model server's /predict and /ingest of modelmon serve."""

    def __init__(self, app_url: str, exporter_url: str, rps: float, seed: int = 1) -> None:
        self.app_url = app_url
        self.exporter_url = exporter_url
        self.rps = rps
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.sent = 0
        self.session = requests.Session()
        # Ground truth arrives late: (due time, request id, true label).
        self.labels: collections.deque[tuple[float, str, int]] = collections.deque(maxlen=10_000)

    def _row(self, drifting: bool) -> dict[str, object]:
        row: dict[str, object] = {name: self.rng.gauss(0, 1) for name in FEATURES}
        if drifting:  # the population changes: bigger amounts, faster spending
            row["amount"] = self.rng.gauss(1.5, 1.3)
            row["velocity"] = self.rng.gauss(0.8, 1)
        if self.rng.random() < 0.02:  # a client bug: a feature sent as text
            row["amount"] = "12,50"
        return row

    @staticmethod
    def _drifting(elapsed: float) -> bool:
        # 2 minutes of drift every 6 minutes, starting 2 minutes in.
        return elapsed % 360 >= 120 and elapsed % 360 < 240

    def _send_due_labels(self, now: float) -> None:
        while self.labels and self.labels[0][0] <= now:
            _, request_id, label = self.labels.popleft()
            self.session.post(f"{self.app_url}/feedback",
                              json={"request_id": request_id, "label": label}, timeout=5)

    def _remember_truth(self, answer: requests.Response, drifting: bool, now: float) -> None:
        if answer.status_code != 200:
            return
        body = answer.json()
        error_rate = 0.35 if drifting else 0.08  # the model is worse on drifted data
        for request_id, predicted in zip(body["request_ids"], body["predictions"], strict=True):
            if self.rng.random() < 0.3:  # a third of the outcomes are ever known
                truth = 1 - predicted if self.rng.random() < error_rate else predicted
                self.labels.append((now + self.rng.uniform(2, 20), request_id, truth))

    def _phase_fault_rate(self, elapsed: float) -> float:
        # 20 s error burst every 3 minutes, starting 60 s in.
        return 0.3 if elapsed > 60 and (elapsed - 60) % 180 < 20 else 0.0

    def run(self) -> None:
        start = time.monotonic()
        fault = 0.0
        while not self.stop.is_set():
            elapsed = time.monotonic() - start
            wanted = self._phase_fault_rate(elapsed)
            try:
                if wanted != fault:
                    self.session.post(f"{self.app_url}/fault", json={"rate": wanted}, timeout=5)
                    fault = wanted
                drifting = self._drifting(elapsed)
                batch = [self._row(drifting) for _ in range(self.rng.choice((1, 1, 1, 4, 16)))]
                answer = self.session.post(f"{self.app_url}/predict", json={"instances": batch},
                                           timeout=5)
                now = time.monotonic()
                self._remember_truth(answer, drifting, now)
                self._send_due_labels(now)
                self.session.post(f"{self.exporter_url}/ingest", json={
                    "model": INGEST_MODEL, "version": "2.4.1", "framework": "onnx",
                    "latency_seconds": abs(self.rng.gauss(0.03, 0.01)),
                    "outcome": "error" if self.rng.random() < 0.01 else "success",
                    "batch_size": 1,
                }, timeout=5)
                self.sent += 1
            except requests.RequestException:
                pass  # a server restarting; keep going
            self.stop.wait(1.0 / self.rps)


def run_traffic(app_url: str, exporter_url: str, rps: float, duration: float | None) -> int:
    """Traffic only, against servers started elsewhere (the compose stack)."""
    traffic = Traffic(app_url.rstrip("/"), exporter_url.rstrip("/"), rps)
    print(f"modelmon demo: sending traffic to {app_url} and {exporter_url}", flush=True)
    try:
        if duration is None:
            traffic.run()
        else:
            threading.Timer(duration, traffic.stop.set).start()
            traffic.run()
    except KeyboardInterrupt:
        pass
    return 0


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)


def run_demo(
    ports: DemoPorts, duration: float | None, rps: float, with_prometheus: bool, workdir: Path | None
) -> int:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="modelmon-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    prom: PrometheusProcess | None = None

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        print(f"modelmon demo: training the model and starting servers (logs in {workdir})")
        os.environ["MODELMON_DEMO_FEEDBACK_DB"] = str(workdir / "feedback.sqlite")
        os.environ["MODELMON_DEMO_LOG_DIR"] = str(workdir / "logs")
        procs.append(_spawn([
            sys.executable, "-m", "gunicorn", "-c", "python:modelmon.exporters.service.gunicorn_config",
            "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{ports.app}",
            "modelmon.demo.model:create_demo_app()",
        ], workdir / "model-server.log"))
        serve_config = workdir / "serve.yml"
        serve_config.write_text(yaml.safe_dump({"listen": f"127.0.0.1:{ports.exporter}"}))
        procs.append(_spawn(
            [sys.executable, "-m", "modelmon", "serve", "--config", str(serve_config)],
            workdir / "exporter.log",
        ))
        app_url = f"http://127.0.0.1:{ports.app}"
        exporter_url = f"http://127.0.0.1:{ports.exporter}"
        wait_http_ok(f"{app_url}/healthz", 60, procs[0])
        wait_http_ok(f"{exporter_url}/healthz", 30, procs[1])
        if with_prometheus and find_binary("prometheus"):
            prom = start_prometheus(
                prometheus_config(
                    [f"127.0.0.1:{ports.app}", f"127.0.0.1:{ports.exporter}"],
                    scrape_interval="5s",
                ),
                workdir=workdir / "prometheus", port=ports.prometheus,
            )
        traffic = Traffic(app_url, exporter_url, rps)
        thread = threading.Thread(target=traffic.run, name="modelmon-demo-traffic", daemon=True)
        thread.start()
        print(f"""
  model server (scikit-learn, 2 gunicorn workers)  {app_url}/predict
      its metrics                                  {app_url}/metrics
  modelmon serve (/ingest from a non-Python model) {exporter_url}/metrics""")
        if prom:
            print(f"""  Prometheus                                       {prom.url}
      try:  sum by (model, outcome) (rate(modelmon_inference_requests_total[1m]))
            histogram_quantile(0.95, sum by (le, model) (rate(modelmon_inference_duration_seconds_bucket[1m])))""")
        else:
            print(f"  Prometheus: not started ({'disabled' if not with_prometheus else INSTALL_HINT})")
        print(f"  pipeline events (ECS JSON lines)                 {workdir / 'logs' / 'events.jsonl'}")
        print("\n  Traffic is flowing: an error burst after 60 s and every 3 min; input drift from"
              "\n  minute 2 to 4 of every 6 (watch modelmon_feature_drift); labels arrive late."
              "\n  Ctrl-C stops.")
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
            for proc in procs:
                if proc.poll() is not None:
                    # _spawn started it with a list of strings.
                    command = cast("list[str]", proc.args)[2:4]
                    print(f"modelmon demo: {command} exited with {proc.returncode}; see {workdir}",
                          file=sys.stderr)
                    return 1
        traffic.stop.set()
        thread.join(5)
        print(f"modelmon demo: done, {traffic.sent} requests sent")
        return 0
    except KeyboardInterrupt:
        print("\nmodelmon demo: stopping")
        return 0
    finally:
        stop_processes([*procs, *([prom.proc] if prom is not None else [])])
