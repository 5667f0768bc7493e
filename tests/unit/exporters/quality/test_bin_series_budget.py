"""The cardinality budget of fleet drift: max_bin_series per model version, on top of max_series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import serve_config_from_mapping
from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.bin_counters import DEFAULT_MAX_BIN_SERIES, SERIES_PER_BIN
from modelmon.exporters.service.monitor import ModelMonitor

MODEL = {"model": "credit", "version": "1"}
_BIN_METRICS = ("cumulative_bin_values_total", "cumulative_bin_values_created",
                "reference_cumulative_share")


def _profile(features: int, importances: dict[str, float] | None = None,
             classes: int = 2) -> Profile:
    rng = np.random.default_rng(3)
    n = 2000
    data = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(features)})
    return Profile.from_data(
        data, model="credit", importances=importances, task="classification",
        predictions=rng.choice([f"c{i}" for i in range(classes)], n).tolist(),
        scores=rng.uniform(size=n).tolist(),
    )


def _bin_series(registry: CollectorRegistry) -> dict[str, int]:
    """Exported fleet drift series per kind (feature, prediction, score), _created included."""
    out: dict[str, int] = {}
    for family in registry.collect():
        for sample in family.samples:
            for kind in ("feature", "prediction", "score"):
                if any(sample.name == f"modelmon_{kind}_{m}" for m in _BIN_METRICS):
                    out[kind] = out.get(kind, 0) + 1
    return out


def _features_with_bins(registry: CollectorRegistry, profile: Profile) -> list[str]:
    return [f.name for f in profile.features if registry.get_sample_value(
        "modelmon_feature_cumulative_bin_values_total",
        {**MODEL, "feature": f.name, "bin": "0", "previous_bin": "none"}) is not None]


def test_the_defaults_fit_the_default_budget_as_documented(registry: CollectorRegistry) -> None:
    # docs/quality.md: 50 drift features x 10 bins, a classifier's 21 prediction bins and
    # 10 score bins: 531 bins, 1,593 series, within max_bin_series 2,000.
    profile = _profile(50, classes=30)
    ModelMonitor("credit", "1", registry=registry, profile=profile)
    series = _bin_series(registry)
    assert series == {"feature": 500 * SERIES_PER_BIN, "prediction": 21 * SERIES_PER_BIN,
                      "score": 10 * SERIES_PER_BIN}
    assert sum(series.values()) == 1593 <= DEFAULT_MAX_BIN_SERIES


def test_the_cap_keeps_predictions_scores_then_the_most_important_features(
    registry: CollectorRegistry,
) -> None:
    importances = {"f0": 0.1, "f1": 0.9, "f2": 0.5, "f3": 0.2}
    profile = _profile(4, importances)
    assert profile.prediction is not None and profile.score is not None
    outputs = SERIES_PER_BIN * (profile.prediction.bins + profile.score.bins)
    per_feature = SERIES_PER_BIN * 10
    # Room for the predictions, the scores and two features, one series short of a third.
    mon = ModelMonitor("credit", "1", registry=registry, profile=profile,
                       quality_options={"max_bin_series": outputs + 3 * per_feature - 1})
    assert _features_with_bins(registry, profile) == ["f1", "f2"]
    assert _bin_series(registry) == {"feature": 2 * per_feature,
                                     "prediction": SERIES_PER_BIN * profile.prediction.bins,
                                     "score": SERIES_PER_BIN * profile.score.bins}
    assert registry.get_sample_value(
        "modelmon_series_budget_exceeded_total",
        {"metric": "feature_cumulative_bin_values_total"}) == 2

    # The admitted features count their values; the others still get in-process drift.
    rows = pd.DataFrame({f"f{i}": [-10.0, 0.0, 10.0] for i in range(4)})
    mon.check_inputs(rows)
    mon.quality.flush()
    for name in ("f1", "f2"):
        assert registry.get_sample_value("modelmon_feature_cumulative_bin_values_total", {
            **MODEL, "feature": name, "bin": "9", "previous_bin": "8"}) == 3
    drift = mon.quality.drift()
    assert set(drift) >= {"f0", "f1", "f2", "f3"}


def test_zero_exports_no_bin_series_and_keeps_the_per_process_gauges(
    registry: CollectorRegistry,
) -> None:
    profile = _profile(3)
    mon = ModelMonitor("credit", "1", registry=registry, profile=profile,
                       quality_options={"max_bin_series": 0})
    mon.check_inputs(pd.DataFrame({f"f{i}": [5.0, 6.0] for i in range(3)}))
    mon.record_predictions(["c0", "c1"], scores=[0.2, 0.9])
    mon.quality.flush()
    assert _bin_series(registry) == {}
    assert registry.get_sample_value(
        "modelmon_feature_drift", {**MODEL, "feature": "f0", "method": "psi"}) > 0
    assert registry.get_sample_value(
        "modelmon_series_budget_exceeded_total",
        {"metric": "prediction_cumulative_bin_values_total"}) == 1


@pytest.mark.parametrize("value", [-1, 1.5, "2000", True])
def test_a_bad_max_bin_series_names_the_option(registry: CollectorRegistry, value: object) -> None:
    with pytest.raises(ValueError, match=r"max_bin_series: expected a non-negative integer"):
        ModelMonitor("credit", "1", registry=registry, profile=_profile(1),
                     quality_options={"max_bin_series": value})  # type: ignore[typeddict-item]


def test_the_serve_config_takes_max_bin_series_per_model() -> None:
    config = serve_config_from_mapping({"quality": {"models": {"credit": {
        "options": {"max_bin_series": 600}}}}})
    assert config.quality["credit"].for_version("credit", "1")["max_bin_series"] == 600
