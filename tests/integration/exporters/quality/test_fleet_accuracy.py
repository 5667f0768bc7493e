"""Fleet accuracy on a real Prometheus: three model servers (one under gunicorn with two
workers) each get a different share and slice of the labelled traffic; the generated
recording rules give the accuracy, per-class precision and recall and the MAE that
scikit-learn computes over the union of all labels."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from sklearn.metrics import accuracy_score, mean_absolute_error, precision_score, recall_score

from modelmon.alerting import rule_groups
from modelmon.demo.processes import PrometheusProcess, prometheus_config, running_prometheus
from modelmon.thresholds import ThresholdsConfig

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
CLASSES = ["approve", "review", "reject"]
# The exact statistic where the counts are exact: float rounding only.
TOLERANCE = 1e-9
_MODELS = {"classification": "fleet-classification", "regression": "fleet-regression"}


@dataclass
class Labelled:
    """Predictions and their ground truth for both models."""

    y_true: list[str]
    y_pred: list[str]
    target: list[float]
    estimate: list[float]

    def __add__(self, other: Labelled) -> Labelled:
        return Labelled(self.y_true + other.y_true, self.y_pred + other.y_pred,
                        self.target + other.target, self.estimate + other.estimate)


def _labelled(rng: np.random.Generator, n: int, right: float, classes: list[str],
              noise: float) -> Labelled:
    """``n`` labels of which about ``right`` are predicted correctly, among ``classes``."""
    y_true = rng.choice(classes, n).tolist()
    wrong = rng.choice(CLASSES, n).tolist()
    y_pred = [t if rng.random() < right else w for t, w in zip(y_true, wrong, strict=True)]
    target = rng.normal(50, 10, n)
    estimate = target + rng.normal(0, noise, n)
    return Labelled(y_true, y_pred, target.tolist(), estimate.tolist())


def _expected(data: Labelled) -> dict[tuple[str, str], float]:
    """(statistic, class) -> scikit-learn's value over ``data``."""
    out = {("accuracy", ""): accuracy_score(data.y_true, data.y_pred),
           ("mae", ""): mean_absolute_error(data.target, data.estimate),
           ("labels", "classification"): float(len(data.y_true)),
           ("labels", "regression"): float(len(data.target))}
    present = sorted(set(data.y_true) | set(data.y_pred))
    precision = precision_score(data.y_true, data.y_pred, labels=present, average=None,
                                zero_division=np.nan)
    recall = recall_score(data.y_true, data.y_pred, labels=present, average=None,
                          zero_division=np.nan)
    for cls, p, r in zip(present, precision, recall, strict=True):
        if not np.isnan(p):  # sklearn's undefined is the rule's absent series
            out[("precision", cls)] = float(p)
        if not np.isnan(r):
            out[("recall", cls)] = float(r)
    return out


@dataclass
class Fleet:
    servers: dict[str, str]  # name -> base URL
    prom: PrometheusProcess
    _next_id: int = 0

    def send(self, name: str, data: Labelled, batch: int = 20) -> set[int]:
        """Predictions, then their labels, to server ``name``; the pids that answered."""
        start_id = self._next_id
        self._next_id += len(data.y_true)
        url = self.servers[name]

        def post(path: str, body: dict[str, Any]) -> int:
            r = requests.post(f"{url}{path}", json=body, timeout=30)
            r.raise_for_status()
            return int(r.json()["pid"])

        def batches(task: str, values: list[Any]) -> list[tuple[list[str], list[Any]]]:
            ids = [f"{name}-{task}-{start_id + i}" for i in range(len(values))]
            return [(ids[i:i + batch], values[i:i + batch]) for i in range(0, len(ids), batch)]

        pids: set[int] = set()
        with ThreadPoolExecutor(4) as pool:
            for task, predicted, truth in (("classification", data.y_pred, data.y_true),
                                           ("regression", data.estimate, data.target)):
                pids |= set(pool.map(lambda b, t=task: post(
                    f"/predict/{t}", {"ids": b[0], "predictions": b[1]}),
                    batches(task, predicted)))
                pids |= set(pool.map(lambda b, t=task: post(
                    f"/feedback/{t}", {"ids": b[0], "labels": b[1]}),
                    batches(task, truth)))
        return pids

    def statistics(self, window: str) -> dict[tuple[str, str], float]:
        result = self.prom.query(
            f'{{__name__=~"modelmon:feedback_(accuracy|precision|recall|mae|labels):{window}"}}')
        out = {}
        for r in result:
            statistic = r["metric"]["__name__"].split(":")[1].removeprefix("feedback_")
            key = r["metric"].get("class", "")
            if statistic == "labels":
                key = next(t for t, m in _MODELS.items() if m == r["metric"]["model"])
            out[(statistic, key)] = float(r["value"][1])
        return out

    def wait_labels(self, window: str, classification: int, regression: int,
                    timeout: float = 30) -> None:
        """Until the rules have counted exactly these labels in ``window``."""
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        expected = {"classification": float(classification), "regression": float(regression)}
        while time.monotonic() < deadline:
            seen = {k[1]: v for k, v in self.statistics(window).items() if k[0] == "labels"}
            if seen == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{window}: labels {seen}, expected {expected}")


def _assert_equal(got: dict[tuple[str, str], float],
                  expected: dict[tuple[str, str], float]) -> None:
    assert set(got) == set(expected), (sorted(set(got) - set(expected)),
                                       sorted(set(expected) - set(got)))
    bad = {k: (got[k], expected[k]) for k in expected
           if abs(got[k] - expected[k]) > TOLERANCE * max(1.0, abs(expected[k]))}
    assert not bad, bad


@pytest.fixture
def fleet(start_server: Callable[..., Any], tmp_path: Path, prometheus_binary: str
          ) -> Iterator[Fleet]:
    def env(name: str) -> dict[str, str]:
        folder = tmp_path / f"feedback-{name}"
        folder.mkdir()
        return {"FEEDBACK_DIR": str(folder)}

    app = [sys.executable, str(HERE / "feedback_app.py"), "{port}"]
    servers = {
        "a": start_server(app, env=env("a")).url,
        "b": start_server(app, env=env("b")).url,
        "c": start_server(
            [sys.executable, "-m", "gunicorn", "-c",
             "python:modelmon.exporters.service.gunicorn_config", "--workers", "2",
             "--threads", "2", "--pythonpath", str(HERE), "--bind", "127.0.0.1:{port}",
             "feedback_app:app"],
            env={**env("c"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc")},
        ).url,
    }
    config = replace(ThresholdsConfig(), evaluation_interval="1s")
    config = replace(config, quality=replace(config.quality, drift_windows=("20s", "1m")))
    groups = [g for g in rule_groups(config) if g["name"] == "modelmon.accuracy.recording"]
    rules = tmp_path / "accuracy.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    targets = [url.removeprefix("http://") for url in servers.values()]
    with running_prometheus(
        prometheus_config(targets, extra={"rule_files": [str(rules)]}),
        binary=prometheus_binary, workdir=tmp_path / "prom",
    ) as prom:
        fleet = Fleet(servers, prom)
        prom.wait_for('count(count by (instance) (modelmon_feedback_total)) == 3')
        fleet.wait_labels("1m", 0, 0)
        yield fleet


def test_fleet_accuracy_equals_sklearn_over_every_replicas_labels(fleet: Fleet) -> None:
    rng = np.random.default_rng(3)
    # Phase 1: every confusion cell is new inside both windows (created on its first
    # label); server b never sees class "reject" as truth.
    a1 = _labelled(rng, 300, 0.9, CLASSES, 1.0)
    b1 = _labelled(rng, 120, 0.5, ["approve", "review"], 5.0)
    c1 = _labelled(rng, 200, 0.7, CLASSES, 2.0)
    fleet.send("a", a1)
    fleet.send("b", b1)
    pids = fleet.send("c", c1, batch=5)
    first = a1 + b1 + c1
    fleet.wait_labels("1m", 620, 620)
    _assert_equal(fleet.statistics("1m"), _expected(first))

    # Phase 2: after the 20s window has moved past phase 1, every series spans it.
    fleet.wait_labels("20s", 0, 0, timeout=40)
    a2 = _labelled(rng, 100, 0.6, CLASSES, 3.0)
    b2 = _labelled(rng, 250, 0.95, CLASSES, 0.5)
    c2 = _labelled(rng, 150, 0.4, ["reject"], 8.0)
    fleet.send("a", a2)
    fleet.send("b", b2)
    pids |= fleet.send("c", c2, batch=5)
    second = a2 + b2 + c2
    fleet.wait_labels("20s", 500, 500)
    fleet.wait_labels("1m", 1120, 1120)
    _assert_equal(fleet.statistics("20s"), _expected(second))
    _assert_equal(fleet.statistics("1m"), _expected(first + second))
    assert len(pids) == 2, f"both gunicorn workers must have answered, got pids {pids}"

    # The per-process gauges stay: each describes its own labels only.
    per_process = {r["metric"]["instance"]: float(r["value"][1]) for r in fleet.prom.query(
        'modelmon_feedback_accuracy{model="fleet-classification"}')}
    b = fleet.servers["b"].removeprefix("http://")
    assert per_process[b] == pytest.approx(accuracy_score(b1.y_true + b2.y_true,
                                                          b1.y_pred + b2.y_pred))
