"""Fleet accuracy recording rules: generated per configured window; the alert reads them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelmon.alerting import rule_groups, thresholds_from_mapping
from modelmon.alerting.accuracy import recording_rules, window_count
from modelmon.catalog import CATALOG
from modelmon.thresholds import ThresholdsConfig

STATISTICS = ("accuracy", "precision", "recall", "mae", "labels")


def _records(config: ThresholdsConfig, catalog: tuple[Any, ...] = CATALOG) -> dict[str, str]:
    return {r["record"]: r["expr"] for r in recording_rules(config, catalog)}


def _alert(config: ThresholdsConfig) -> dict[str, Any]:
    return next(r for g in rule_groups(config) for r in g["rules"]
                if r.get("alert") == "ModelAccuracyDrop")


def test_one_series_per_statistic_and_drift_window() -> None:
    config = thresholds_from_mapping({"quality": {"drift_windows": ["15m", "6h", "90m"]}})
    records = _records(config)
    for window in ("15m", "6h", "1h30m"):
        for statistic in STATISTICS:
            assert f"modelmon:feedback_{statistic}:{window}" in records
    assert not any(name.endswith((":1h", ":1d")) for name in records)


def test_the_prefix_names_the_level_and_the_counters() -> None:
    records = _records(replace(ThresholdsConfig(), prefix="acme_"))
    assert "acme:feedback_accuracy:1h" in records
    assert "acme_feedback_total" in records["acme:feedback_outcomes:increase1h"]
    assert "modelmon" not in "".join(records)


def test_a_cell_born_inside_the_window_counts_from_zero_and_a_reset_falls_back() -> None:
    expr = window_count("c", "1h", "model")
    # Seen before the window: last minus first sample; born inside: its last sample.
    assert "max_over_time(c[1h])\n      - (min_over_time(c[1h]) and c offset 1h)" in expr
    assert "or\n        max_over_time(c[1h])" in expr
    assert "resets(c[1h]) > 0" in expr and "increase(c[1h])" in expr


def test_precision_and_recall_read_the_per_class_outcomes() -> None:
    records = _records(ThresholdsConfig())
    for name, miss in (("modelmon:feedback_precision:1h", "false_positive"),
                       ("modelmon:feedback_recall:1h", "false_negative")):
        assert f'outcome=~"true_positive|{miss}"' in records[name]
    assert "modelmon_feedback_class_labels_total" in records[
        "modelmon:feedback_class_labels:increase1h"]


def test_only_the_catalog_counters_that_exist_get_rules() -> None:
    without_classes = tuple(k for k in CATALOG if k.name != "feedback_class_labels_total")
    records = _records(ThresholdsConfig(), without_classes)
    assert "modelmon:feedback_accuracy:1h" in records
    assert not any("precision" in name or "recall" in name for name in records)


def test_the_alert_compares_the_first_window_with_the_longest() -> None:
    config = thresholds_from_mapping({"quality": {"drift_windows": ["30m", "1w", "1d"]}})
    expr = _alert(config)["expr"]
    assert "modelmon:feedback_accuracy:30m\n  < modelmon:feedback_accuracy:7d - 0.1" in expr
    assert expr.endswith("modelmon:feedback_labels:30m >= 100")


def test_with_one_window_the_alert_compares_with_its_daily_average() -> None:
    config = thresholds_from_mapping({"quality": {"drift_windows": ["2h"]}})
    alert = _alert(config)
    assert "avg_over_time(modelmon:feedback_accuracy:2h[1d]) - 0.1" in alert["expr"]
    assert "its 1d average" in alert["annotations"]["description"]


def test_the_accuracy_group_comes_before_the_alerts_that_read_it() -> None:
    names = [g["name"] for g in rule_groups(ThresholdsConfig())]
    assert names.index("modelmon.accuracy.recording") < names.index("modelmon.quality.alerts")
