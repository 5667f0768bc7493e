"""Per-class label counters: what the fleet precision and recall rules sum."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry
from sklearn.metrics import precision_score, recall_score

from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.feedback import CLASS_OUTCOMES
from modelmon.exporters.service.monitor import ModelMonitor

L = {"model": "credit", "version": "1"}


def _outcomes(registry: CollectorRegistry, cls: str) -> dict[str, float | None]:
    return {o: registry.get_sample_value("modelmon_feedback_class_labels_total",
                                         {**L, "class": cls, "outcome": o})
            for o in CLASS_OUTCOMES}


def _mon(registry: CollectorRegistry, **options: object) -> ModelMonitor:
    return ModelMonitor("credit", "1", registry=registry,
                        quality_options={"feedback_db": ":memory:", **options})  # type: ignore[typeddict-item]


def test_class_outcomes_give_sklearns_precision_and_recall(registry: CollectorRegistry) -> None:
    rng = np.random.default_rng(4)
    classes = ["a", "b", "c", "d"]
    y_pred = rng.choice(classes, 400)
    y_true = np.where(rng.random(400) < 0.6, y_pred, rng.choice(classes, 400))
    mon = _mon(registry)
    ids = [f"r{i}" for i in range(400)]
    mon.record_predictions(y_pred.tolist(), request_ids=ids)
    for rid, label in zip(ids, y_true.tolist(), strict=True):
        mon.record_feedback(rid, label)
    mon.quality.flush()
    precision = precision_score(y_true, y_pred, labels=classes, average=None)
    recall = recall_score(y_true, y_pred, labels=classes, average=None)
    for cls, p, r in zip(classes, precision, recall, strict=True):
        c = _outcomes(registry, cls)
        tp, fp, fn = (c[o] or 0.0 for o in CLASS_OUTCOMES)
        assert tp / (tp + fp) == p and tp / (tp + fn) == r, cls


def test_a_class_gets_its_three_series_at_zero_on_first_sight(registry: CollectorRegistry) -> None:
    mon = _mon(registry)
    mon.record_predictions(["a"], request_ids=["r1"])
    mon.record_feedback("r1", "b")
    mon.quality.flush()
    assert _outcomes(registry, "a") == {"true_positive": 0, "false_positive": 1,
                                        "false_negative": 0}
    assert _outcomes(registry, "b") == {"true_positive": 0, "false_positive": 0,
                                        "false_negative": 1}


def test_two_classes_folded_into_other_are_not_a_hit(registry: CollectorRegistry) -> None:
    mon = _mon(registry, max_confusion_classes=1)
    mon.record_predictions(["a", "x", "y"], request_ids=["r1", "r2", "r3"])
    for rid, label in (("r1", "a"), ("r2", "y"), ("r3", "y")):
        mon.record_feedback(rid, label)
    mon.quality.flush()
    # x predicted, y true: a miss even though both are __other__; y predicted and true: a hit.
    assert _outcomes(registry, "__other__") == {"true_positive": 1, "false_positive": 1,
                                                "false_negative": 1}
    assert _outcomes(registry, "a")["true_positive"] == 1


def test_the_profiles_classes_are_named_alike_in_every_process() -> None:
    """Two processes meeting the classes in opposite orders fold the same ones."""
    rng = np.random.default_rng(5)
    predictions = rng.choice(["a", "b", "c"], 1000, p=[0.5, 0.3, 0.2]).tolist()
    profile = Profile.from_data(pd.DataFrame({"x": rng.normal(size=1000)}),
                                predictions=predictions, task="classification")
    registries = [CollectorRegistry(), CollectorRegistry()]
    for registry, order in zip(registries, (["c", "b", "a"], ["a", "b", "c"]), strict=True):
        mon = ModelMonitor("credit", "1", registry=registry, profile=profile, quality_options={
            "feedback_db": ":memory:", "max_confusion_classes": 2})
        # Before any label: the profile's two most frequent classes, at 0.
        assert _outcomes(registry, "a")["true_positive"] == 0
        assert _outcomes(registry, "c")["true_positive"] is None
        mon.record_predictions(order, request_ids=order)
        for cls in order:
            mon.record_feedback(cls, cls)
        mon.quality.flush()
    for registry in registries:
        assert {c: _outcomes(registry, c)["true_positive"] for c in ("a", "b", "__other__")} \
            == {"a": 1, "b": 1, "__other__": 1}
