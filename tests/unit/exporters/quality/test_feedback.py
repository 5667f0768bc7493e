"""Late ground truth: join, windowed accuracy/precision/recall/MAE, a bounded store that
survives restarts, evictions counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import accuracy_score, mean_absolute_error, precision_score, recall_score

from modelmon.exporters.service.monitor import ModelMonitor

L = {"model": "credit", "version": "1"}


def _mon(registry: CollectorRegistry, **options) -> ModelMonitor:
    return ModelMonitor("credit", "1", registry=registry, quality_options=options)


def test_classification_join_matches_sklearn(registry: CollectorRegistry, sample) -> None:
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    y_pred = rng.choice(classes, 300)
    y_true = np.where(rng.random(300) < 0.7, y_pred, rng.choice(classes, 300))
    mon = _mon(registry, feedback_window=200)
    ids = [f"r{i}" for i in range(300)]
    mon.record_predictions(y_pred, request_ids=ids)
    order = rng.permutation(300)  # labels arrive in any order
    for i in order:
        mon.record_feedback(ids[i], y_true[i])
    mon.quality.flush()
    correct = int((y_pred == y_true).sum())
    assert sample("modelmon_feedback_total", outcome="correct") == correct
    assert sample("modelmon_feedback_total", outcome="incorrect") == 300 - correct
    window = order[-200:]  # the gauges cover the last 200 labels that arrived
    t, p = y_true[window], y_pred[window]
    assert sample("modelmon_feedback_accuracy") == pytest.approx(accuracy_score(t, p))
    for cls in classes:
        assert sample("modelmon_feedback_precision", **{"class": cls}) == pytest.approx(
            precision_score(t, p, labels=[cls], average="macro", zero_division=0))
        assert sample("modelmon_feedback_recall", **{"class": cls}) == pytest.approx(
            recall_score(t, p, labels=[cls], average="macro", zero_division=0))
    assert sample("modelmon_feedback_window_labels") == 200
    for tc in classes:
        for pc in classes:
            expected = int(((y_true == tc) & (y_pred == pc)).sum())
            assert (sample("modelmon_feedback_confusion_total", true_class=tc, predicted_class=pc)
                    or 0) == expected
    assert sample("modelmon_feedback_label_delay_seconds_count") == 300
    assert sample("modelmon_feedback_store_entries") == 0


def test_regression_join_mae(registry: CollectorRegistry, sample) -> None:
    mon = _mon(registry, task="regression")
    y_pred = [1.0, 2.0, 3.0, 4.0]
    y_true = [1.5, 2.0, 1.0, 10.0]
    mon.record_predictions(y_pred, request_ids=["a", "b", "c", "d"])
    for rid, y in zip("abcd", y_true, strict=True):
        mon.record_feedback(rid, y)
    mon.quality.flush()
    assert sample("modelmon_feedback_mae") == pytest.approx(mean_absolute_error(y_true, y_pred))
    assert sample("modelmon_feedback_total", outcome="observed") == 4
    assert sample("modelmon_feedback_absolute_error_sum") == pytest.approx(8.5)
    assert np.isnan(sample("modelmon_feedback_accuracy"))


def test_unmatched_and_duplicate_labels(registry: CollectorRegistry, sample) -> None:
    mon = _mon(registry)
    mon.record_predictions(["a"], request_ids=["r1"])
    mon.record_feedback("r1", "a")
    mon.record_feedback("r1", "a")  # a prediction takes one label
    mon.record_feedback("never-seen", "b")
    mon.quality.flush()
    assert sample("modelmon_feedback_total", outcome="correct") == 1
    assert sample("modelmon_feedback_unmatched_total") == 2


def test_store_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "feedback.sqlite"
    first = _mon(CollectorRegistry(), feedback_db=str(db))
    first.record_predictions(["a", "b"], request_ids=["r1", "r2"])
    first.quality.close()  # shutdown
    del first

    registry = CollectorRegistry()  # a new process: new registry, same file
    second = _mon(registry, feedback_db=str(db))
    _ = second.quality  # the tracker starts on first use; here, at startup
    assert registry.get_sample_value("modelmon_feedback_store_entries", L) == 2
    second.record_feedback("r1", "a")
    second.record_feedback("r2", "a")
    second.quality.flush()
    assert registry.get_sample_value("modelmon_feedback_total", {**L, "outcome": "correct"}) == 1
    assert registry.get_sample_value("modelmon_feedback_total", {**L, "outcome": "incorrect"}) == 1
    assert registry.get_sample_value("modelmon_feedback_store_entries", L) == 0


def test_max_entries_evicts_the_oldest_and_counts(registry: CollectorRegistry, sample) -> None:
    mon = _mon(registry, feedback_max_entries=3)
    for i in range(5):
        mon.record_predictions(["a"], request_ids=[f"r{i}"])
        mon.quality.flush()
    assert sample("modelmon_feedback_store_evictions_total", reason="max_entries") == 2
    assert sample("modelmon_feedback_store_entries") == 3
    mon.record_feedback("r0", "a")  # evicted
    mon.record_feedback("r4", "a")
    mon.quality.flush()
    assert sample("modelmon_feedback_unmatched_total") == 1
    assert sample("modelmon_feedback_total", outcome="correct") == 1


def test_ttl_expires_entries_and_counts(registry: CollectorRegistry, sample, monkeypatch) -> None:
    mon = _mon(registry, feedback_ttl="1h")
    now = [1_000_000.0]
    monkeypatch.setattr(mon.quality.feedback, "_clock", lambda: now[0])
    monkeypatch.setattr(mon.quality.feedback.store, "_clock", lambda: now[0])
    mon.record_predictions(["a", "b"], request_ids=["old1", "old2"])
    mon.quality.flush()
    now[0] += 3000
    mon.record_predictions(["a"], request_ids=["new"])
    mon.quality.flush()
    now[0] += 1000  # old ones are 4000 s old, the new one 1000 s
    mon.record_feedback("old1", "a")  # expired before the sweep ran: not joined, counted
    mon.quality.feedback.sweep()
    mon.record_feedback("new", "a")
    mon.quality.flush()
    assert sample("modelmon_feedback_store_evictions_total", reason="ttl") == 2
    assert sample("modelmon_feedback_unmatched_total") == 1
    assert sample("modelmon_feedback_total", outcome="correct") == 1
    assert sample("modelmon_feedback_label_delay_seconds_sum") == 1000


def test_full_queue_drops_and_counts_without_blocking(registry: CollectorRegistry, sample) -> None:
    mon = _mon(registry, feedback_queue=2)
    tracker = mon.quality
    with tracker.feedback._drain_lock:  # hold the worker off so the queue fills
        for i in range(5):
            mon.record_predictions(["a"], request_ids=[f"r{i}"])
    tracker.flush()
    assert sample("modelmon_feedback_store_evictions_total", reason="queue_full") == 3
    assert sample("modelmon_feedback_store_entries") == 2


def test_background_worker_joins_without_flush(registry: CollectorRegistry, sample) -> None:
    import time

    mon = _mon(registry)
    mon.record_predictions(["a"], request_ids=["r1"])
    mon.record_feedback("r1", "a")
    deadline = time.monotonic() + 5
    while sample("modelmon_feedback_total", outcome="correct") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample("modelmon_feedback_total", outcome="correct") == 1


def test_bad_feedback_is_counted_not_raised(registry: CollectorRegistry, sample) -> None:
    mon = _mon(registry, task="regression")
    mon.record_predictions([1.0], request_ids=["r1"])
    mon.record_feedback("r1", "not a number")
    mon.record_predictions([1.0, 2.0], request_ids=["only-one"])  # length mismatch
    mon.quality.flush()
    assert sample("modelmon_quality_check_errors_total", operation="record_feedback") == 1
    assert sample("modelmon_quality_check_errors_total", operation="record_predictions") == 1


def test_confusion_classes_are_capped(registry: CollectorRegistry) -> None:
    mon = _mon(registry, max_confusion_classes=2)
    labels = ["a", "b", "c", "d"]
    mon.record_predictions(labels, request_ids=labels)
    for rid in labels:
        mon.record_feedback(rid, rid)
    mon.quality.flush()
    cells = {
        (s.labels["true_class"], s.labels["predicted_class"]): s.value
        for m in registry.collect() if m.name == "modelmon_feedback_confusion"
        for s in m.samples if s.name.endswith("_total")
    }
    assert cells == {("a", "a"): 1, ("b", "b"): 1, ("__other__", "__other__"): 2}


def test_the_default_store_survives_a_restart(registry: CollectorRegistry, sample) -> None:
    import os
    from pathlib import Path

    first = _mon(CollectorRegistry())
    first.record_predictions(["a"], request_ids=["r-restart"])
    first.quality.flush()
    first.quality.close()
    db = Path(os.environ["XDG_STATE_HOME"]) / "modelmon" / "feedback"
    assert list(db.glob("*.sqlite")), "the default store is a file in the state directory"
    second = _mon(registry)  # a new process would build the same default path
    second.record_feedback("r-restart", "a")
    second.quality.flush()
    assert sample("modelmon_feedback_total", outcome="correct") == 1
