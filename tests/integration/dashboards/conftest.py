"""Fixtures of the dashboards/rules integration tests: real binaries, a live model."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from modelmon.demo.processes import find_binary, free_port

REPO = Path(__file__).resolve().parents[3]


def binary(name: str) -> str:
    path = find_binary(name)
    if path is None:  # fail, never skip: a skipped integration test proves nothing
        pytest.fail(f"{name} missing: apt-get install prometheus prometheus-alertmanager")
    return path


class FaultyModel(Exception):
    pass


@dataclass
class LiveModel:
    """An instrumented model served on loopback, called by a background thread."""

    registry: CollectorRegistry
    port: int
    error_share: float = 0.0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def live_model() -> Iterator[LiveModel]:
    from modelmon import ModelMonitor

    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    live = LiveModel(registry, port)
    mon = ModelMonitor("fraud-detector", version="3.1.0", framework="sklearn", registry=registry)
    mon.record_model_load(0.2)
    rng = random.Random(7)
    stop = threading.Event()

    @mon.track
    def predict(rows: list[float]) -> list[int]:
        time.sleep(rng.uniform(0, 0.002))
        if rng.random() < live.error_share:
            raise FaultyModel("weights file is corrupt")
        return [int(r > 0.5) for r in rows]

    def drive() -> None:
        while not stop.is_set():
            try:
                predict([rng.random() for _ in range(rng.randint(1, 8))])
            except FaultyModel:
                pass
            time.sleep(0.005)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        yield live
    finally:
        stop.set()
        driver.join(5)
        server.shutdown()
        thread.join(5)


@dataclass
class Workload:
    """Two live targets with traffic: an instrumented Flask model app (RED,
    HTTP, plugins, model quality and feedback) and ``modelmon serve``'s /ingest."""

    targets: list[str]
    errors: list[str]


def _serve(app: object) -> tuple[str, object, threading.Thread]:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: object, **kwargs: object) -> None:
            pass

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    import numpy as np
    import requests
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException

    from modelmon import ModelMonitor, Profile, instrument_app
    from modelmon.config import ServeConfig
    from modelmon.exporters.service.app import create_app

    rng = np.random.default_rng(3)
    errors: list[str] = []
    train = {
        "amount": rng.normal(100, 20, 2000).tolist(),
        "age": rng.integers(18, 90, 2000).astype(float).tolist(),
        "country": rng.choice(["de", "fr", "it"], 2000).tolist(),
    }
    rows = [dict(zip(train, values, strict=True)) for values in zip(*train.values(), strict=True)]
    profile = Profile.from_data(
        rows, model="fraud-detector", predictions=rng.integers(0, 2, 2000).tolist(),
        scores=rng.uniform(0, 1, 2000).tolist(), task="classification",
        categorical=["country"],
    )
    registry = CollectorRegistry()
    from modelmon import LogShipper

    logs_dir = tmp_path_factory.mktemp("logs")
    shipper = LogShipper("file", path=logs_dir / "events.jsonl", spool_dir=logs_dir / "spool",
                         registry=registry)
    mon = ModelMonitor(
        "fraud-detector", version="3.1.0", framework="sklearn", registry=registry,
        profile=profile, max_label_values=2, logs=shipper,
    )
    mon.record_model_load(0.4)
    app = Flask("workload")
    exception_types = [ValueError, KeyError, TypeError]  # 3 > max_label_values: overflow

    @app.post("/predict")
    def predict_route() -> object:
        body = request.get_json()
        with mon.track(batch_size=len(body["rows"])) as call:
            kind = body.get("fault")
            if kind == "reject":
                call.reject()
            elif kind == "error":
                mon.log.error(message="broken weights")
                raise exception_types[body["n"] % 3]("broken")
            time.sleep(0.001)
        mon.log.prediction(0.001, prediction=0, batch_size=len(body["rows"]))
        return jsonify(predictions=[0] * len(body["rows"]))

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> object:
        if isinstance(exc, HTTPException):
            return exc
        return jsonify(error=type(exc).__name__), 500

    instrument_app(app, mon)
    app_target, app_server, _ = _serve(app)
    serve_target, serve_server, _ = _serve(create_app(ServeConfig(), CollectorRegistry()))
    stop = threading.Event()

    def quality_step(n: int) -> None:
        batch = [dict(r) for r in rows[n % 1900: n % 1900 + 50]]
        for i, row in enumerate(batch):
            row["amount"] = row["amount"] * 3  # drift
            if i == 0:
                row["age"] = None  # missing
            if i == 1:
                row["age"] = 500.0  # out of range
            if i == 2:
                row["amount"] = "lots"  # wrong type
            if i == 3:
                row["country"] = "xx"  # unseen category
        batch[4].pop("country")  # schema: missing column
        batch[5]["extra"] = 1  # schema: unexpected column
        mon.check_inputs(batch)
        ids = [f"r{n}-{i}" for i in range(len(batch))]
        preds = rng.integers(0, 2, len(batch)).tolist()
        mon.record_predictions(preds, scores=rng.uniform(0, 1, len(batch)).tolist(), request_ids=ids)
        for rid, pred in zip(ids[:30], preds[:30], strict=True):
            mon.record_feedback(rid, pred if rng.random() < 0.8 else 1 - pred)
        mon.record_feedback(f"unknown-{n}", 1)

    def drive() -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set() and n < 100_000:
            n += 1
            fault = {0: "error", 1: "reject"}.get(n % 10)
            try:
                session.post(f"http://{app_target}/predict",
                             json={"rows": [1] * (1 + n % 8), "fault": fault, "n": n}, timeout=5)
                session.get(f"http://{app_target}/nowhere", timeout=5)
                session.post(f"http://{serve_target}/ingest", timeout=5, json=[
                    {"model": "scorer", "version": "2", "latency_seconds": 0.01, "batch_size": 4},
                    {"model": "scorer", "version": "2", "latency_seconds": 0.2,
                     "outcome": "error", "exception": "Timeout"},
                ])
                session.post(f"http://{serve_target}/ingest", timeout=5,
                             json={"model": "scorer"})  # invalid: no latency_seconds
                if n % 5 == 0:
                    quality_step(n)
            except Exception as exc:  # keep driving; the test reports what failed
                if len(errors) < 20:
                    errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        yield Workload([app_target, serve_target], errors)
    finally:
        stop.set()
        driver.join(10)
        app_server.shutdown()
        shipper.close()
        serve_server.shutdown()
