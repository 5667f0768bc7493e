"""Synthetic clients of the demo's cloud models, steered by the schedule.

``Conditions`` is what the schedule changes (faults, latency, drift, wrong
labels); ``Traffic`` sends requests to the model server's /predict, late
ground truth to its /feedback, and /ingest events to ``modelmon serve`` as a
non-Python model server would.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from modelmon.demo.model import FEATURES, make_dataset
from modelmon.demo.scenarios import Conditions

INGEST_MODEL = "recommender-java"
MAX_IN_FLIGHT = 8  # concurrent /predict calls, at most (gunicorn serves 2 x 4 threads)


class Traffic:
    """Requests until ``stop`` is set; ``conditions`` may change at any time."""

    def __init__(self, app_url: str, exporter_url: str, rps: float, seed: int = 1,
                 label_delay: tuple[float, float] = (1.0, 5.0)) -> None:
        self.app_url = app_url
        self.exporter_url = exporter_url
        self.rps = rps
        self.label_delay = label_delay
        self.rng = random.Random(seed)
        # Live rows come from the training distribution (its reference profile),
        # so that drift shows only when the schedule asks for it.
        self.population = make_dataset()[0].tolist()
        self.stop = threading.Event()
        self.conditions = Conditions()
        self.sent = 0
        self.failed = 0
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="demo-client")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._in_flight = 0
        self.session = requests.Session()
        # A new connection per request, so gunicorn's workers share the calls (and
        # the late labels) as behind a load balancer, not one kept-alive worker.
        self.session.headers["Connection"] = "close"
        # Ground truth arrives late: (due time, request id, true label).
        self.labels: collections.deque[tuple[float, str, int]] = collections.deque(maxlen=10_000)

    def _row(self, drifting: bool) -> dict[str, object]:
        values = self.rng.choice(self.population)
        row: dict[str, object] = {name: v + self.rng.gauss(0, 0.05)
                                  for name, v in zip(FEATURES, values, strict=True)}
        if drifting:  # the population changes: bigger amounts, faster spending
            row["amount"] = float(values[0]) + self.rng.gauss(2.5, 0.5)
            row["velocity"] = float(values[5]) + self.rng.gauss(1.5, 0.5)
        if self.rng.random() < 0.02:  # a client bug: a feature sent as text
            row["amount"] = "12,50"
        return row

    def _send_due_labels(self, now: float) -> None:
        while self.labels and self.labels[0][0] <= now:
            _, request_id, label = self.labels.popleft()
            self.session.post(f"{self.app_url}/feedback",
                              json={"request_id": request_id, "label": label}, timeout=5)

    def _remember_truth(self, answer: requests.Response, wrong: float, now: float) -> None:
        if answer.status_code != 200:
            return
        body = answer.json()
        for request_id, predicted in zip(body["request_ids"], body["predictions"], strict=True):
            if self.rng.random() < 0.3:  # a third of the outcomes are ever known
                truth = 1 - predicted if self.rng.random() < wrong else predicted
                self.labels.append((now + self.rng.uniform(*self.label_delay), request_id, truth))

    def _set_faults(self, c: Conditions) -> None:
        self.session.post(f"{self.app_url}/fault", json={
            "rate": c.fault_rate, "latency": c.latency, "latency_share": c.latency_share,
        }, timeout=5)

    def run(self) -> None:
        applied: Conditions | None = None
        while not self.stop.is_set():
            c = self.conditions
            try:
                if applied is None or (c.fault_rate, c.latency, c.latency_share) != (
                        applied.fault_rate, applied.latency, applied.latency_share):
                    self._set_faults(c)
                    applied = c
                # the model is worse on drifted data
                wrong = max(c.label_error_rate, 0.35 if c.drifting else 0.0)
                batch = [self._row(c.drifting) for _ in range(self.rng.choice((1, 1, 1, 4, 16)))]
                with self._lock:
                    busy = self._in_flight >= MAX_IN_FLIGHT
                    if not busy:
                        self._in_flight += 1
                if not busy:  # a server slower than the rate drops calls, as clients give up
                    self._pool.submit(self._predict, batch, wrong)
                self._send_due_labels(time.monotonic())
                self.session.post(f"{self.exporter_url}/ingest", json={
                    "model": INGEST_MODEL, "version": "2.4.1", "framework": "onnx",
                    "latency_seconds": abs(self.rng.gauss(0.03, 0.01)),
                    "outcome": "error" if self.rng.random() < 0.002 else "success",
                    "batch_size": 1,
                }, timeout=5)
                self.sent += 1
            except requests.RequestException:
                self.failed += 1  # a server restarting; keep going
            self.stop.wait(1.0 / self.rps)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _predict(self, batch: list[dict[str, object]], wrong: float) -> None:
        """One client's call: concurrent with the others, so slow answers do not
        slow the arrival of requests (a latency burst is a share of the calls)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Connection"] = "close"
        try:
            answer = session.post(f"{self.app_url}/predict", json={"instances": batch},
                                  timeout=10)
            with self._lock:
                self._remember_truth(answer, wrong, time.monotonic())
        except requests.RequestException:
            self.failed += 1
        finally:
            with self._lock:
                self._in_flight -= 1
