"""Fleet drift recording rules: generated per configured window, with the in-process epsilon."""

from __future__ import annotations

from typing import Any

import pytest

from modelmon.alerting import rule_groups, thresholds_from_mapping
from modelmon.alerting.drift import recording_rules
from modelmon.catalog import CATALOG
from modelmon.config import ConfigError
from modelmon.exporters.quality.drift import PSI_EPSILON
from modelmon.thresholds import ThresholdsConfig


def _records(config: ThresholdsConfig) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["record"], r.get("labels", {}).get("method", "")): r
            for r in recording_rules(config, CATALOG)}


def test_one_drift_series_per_kind_window_and_method() -> None:
    config = thresholds_from_mapping({"quality": {"drift_windows": ["15m", "6h", "90m"]}})
    records = _records(config)
    for kind in ("feature", "prediction", "score"):
        for window in ("15m", "6h", "1h30m"):
            for method in ("psi", "js", "ks"):
                assert (f"modelmon:{kind}_drift:{window}", method) in records
            assert (f"modelmon:{kind}_drift_values:{window}", "") in records


def test_the_default_windows_are_1h_and_1d() -> None:
    names = {name for name, _ in _records(ThresholdsConfig())}
    assert {"modelmon:feature_drift:1h", "modelmon:feature_drift:1d"} <= names
    assert not any(":feature_drift:" in n and not n.endswith(("1h", "1d")) for n in names)


def test_psi_floors_shares_at_the_in_process_epsilon() -> None:
    psi = _records(ThresholdsConfig())[("modelmon:feature_drift:1h", "psi")]["expr"]
    assert f"clamp_min(modelmon:feature_bin_share:ratio1h, {PSI_EPSILON:g})" in psi


def test_ks_only_for_numeric_features() -> None:
    ks = _records(ThresholdsConfig())[("modelmon:feature_drift:1h", "ks")]["expr"]
    assert 'kind="numeric"' in ks


def test_a_custom_prefix_names_the_metrics_and_the_level() -> None:
    config = thresholds_from_mapping({"prefix": "acme_"})
    records = _records(config)
    counts = records[("acme:feature_cumulative_bin_values:increase1h", "")]["expr"]
    assert "acme_feature_cumulative_bin_values_total[1h]" in counts
    assert ("acme:feature_drift:1h", "psi") in records


def test_recording_rules_come_before_the_alerts_that_read_them() -> None:
    names = [g["name"] for g in rule_groups(ThresholdsConfig())]
    assert names.index("modelmon.drift.recording") < names.index("modelmon.quality.alerts")


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ([], "quality.drift_windows: expected a non-empty list"),
        ("1h", "quality.drift_windows: expected a non-empty list"),
        (["1h", "1h"], "distinct durations"),
        (["1h", "60m"], "distinct durations"),
        (["soon"], "quality.drift_windows[0]"),
        (["0s"], "longer than 0s"),
    ],
)
def test_bad_drift_windows_name_the_field(windows: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        thresholds_from_mapping({"quality": {"drift_windows": windows}})
