"""record_predictions: class counts (capped), score and value histograms, prediction drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import Profile
from modelmon.exporters.service.monitor import ModelMonitor


def test_class_counts_and_scores(make_monitor, sample) -> None:
    mon = make_monitor()
    mon.record_predictions(["approve", "approve", "reject"], scores=[0.9, 0.8, 0.55])
    mon.record_predictions(np.array(["reject"]), scores=np.array([[0.3, 0.7]]))  # top probability
    mon.record_predictions("approve")  # one scalar prediction
    assert sample("modelmon_predictions_total", **{"class": "approve"}) == 3
    assert sample("modelmon_predictions_total", **{"class": "reject"}) == 2
    assert sample("modelmon_prediction_score_count") == 4
    assert sample("modelmon_prediction_score_sum") == 0.9 + 0.8 + 0.55 + 0.7
    assert sample("modelmon_prediction_score_bucket", le="0.6") == 1


def test_class_label_is_capped(registry: CollectorRegistry, sample) -> None:
    mon = ModelMonitor("credit", "1", registry=registry, quality_options={"max_classes": 3})
    mon.record_predictions([f"c{i}" for i in range(10)])
    counted = {
        s.labels["class"]: s.value for m in registry.collect() if m.name == "modelmon_predictions"
        for s in m.samples if s.name.endswith("_total")
    }
    assert counted == {"c0": 1, "c1": 1, "c2": 1, "__other__": 7}
    assert registry.get_sample_value(
        "modelmon_label_overflow_total", {"metric": "predictions_total", "label": "class"}) == 7


def test_regression_outputs_histogram(registry: CollectorRegistry, sample) -> None:
    mon = ModelMonitor("credit", "1", registry=registry, quality_options={"task": "regression"})
    mon.record_predictions([0.5, 5.0, 50.0, float("nan"), None])
    assert sample("modelmon_prediction_value_count") == 3
    assert sample("modelmon_prediction_value_bucket", le="1.0") == 1
    assert sample("modelmon_predictions_total", **{"class": "0.5"}) is None


def test_prediction_and_score_drift(make_monitor, sample) -> None:
    mon = make_monitor(window=1000)
    rng = np.random.default_rng(0)
    # The profile has 70% approve with beta(5, 2) scores; live traffic flips both.
    mon.record_predictions(rng.choice(["approve", "reject"], 1000, p=[0.2, 0.8]),
                           scores=rng.beta(2, 5, 1000))
    assert sample("modelmon_prediction_drift", method="psi") > 0.25
    assert sample("modelmon_prediction_drift", method="ks") is None  # classes have no order
    assert sample("modelmon_score_drift", method="ks") > 0.3
    same = ModelMonitor("credit", "2", registry=CollectorRegistry(),
                        profile=mon.quality.profile, quality_options={"window": 1000})
    same.record_predictions(rng.choice(["approve", "reject"], 1000, p=[0.7, 0.3]),
                            scores=rng.beta(5, 2, 1000))
    assert same.quality.drift()["__prediction__"]["psi"] < 0.1
    assert same.quality.drift()["__score__"]["psi"] < 0.1


def test_regression_prediction_drift_has_ks() -> None:
    rng = np.random.default_rng(1)
    profile = Profile.from_data(pd.DataFrame({"x": rng.normal(size=2000)}),
                                predictions=rng.normal(10, 2, 2000))
    mon = ModelMonitor("r", "1", registry=CollectorRegistry(), profile=profile,
                       quality_options={"window": 500})
    mon.record_predictions(rng.normal(14, 2, 500))
    drift = mon.quality.drift()["__prediction__"]
    assert drift["ks"] > 0.5 and drift["psi"] > 0.25
