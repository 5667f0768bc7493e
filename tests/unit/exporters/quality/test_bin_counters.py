"""Fleet drift counters: the cumulative bin counts and reference shares every process exports."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.bin_counters import FLUSH_SECONDS, BinCounters
from modelmon.exporters.quality.drift import BinLayout
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.metrics import MetricSet

MODEL = {"model": "credit", "version": "1"}


def _live_counts(registry: CollectorRegistry, kind: str, bins: int, **labels: str) -> np.ndarray:
    """Per-bin counts recovered the way the recording rules do: cum[k] - cum[k - 1]."""
    cum = np.array([
        registry.get_sample_value(
            f"modelmon_{kind}_cumulative_bin_values_total",
            {**MODEL, **labels, "bin": str(b), "previous_bin": "none" if b == 0 else str(b - 1)},
        )
        for b in range(bins)
    ])
    return np.diff(np.concatenate(([0.0], cum)))


def test_every_bin_series_exists_at_zero_before_the_first_row(
    registry: CollectorRegistry, make_monitor: Callable[..., ModelMonitor], profile: Profile
) -> None:
    make_monitor()
    for f in profile.features:
        assert _live_counts(registry, "feature", f.bins, feature=f.name).tolist() == [0] * f.bins
    assert profile.prediction is not None and profile.score is not None
    assert _live_counts(registry, "prediction", profile.prediction.bins).sum() == 0
    assert _live_counts(registry, "score", profile.score.bins).sum() == 0


def test_reference_shares_are_the_profile_cdf_with_its_kind(
    registry: CollectorRegistry, make_monitor: Callable[..., ModelMonitor], profile: Profile
) -> None:
    make_monitor()
    for f in profile.features:
        expected = np.cumsum(f.counts) / sum(f.counts)
        got = [
            registry.get_sample_value("modelmon_feature_reference_cumulative_share", {
                **MODEL, "feature": f.name, "bin": str(b),
                "previous_bin": "none" if b == 0 else str(b - 1), "kind": f.kind,
            })
            for b in range(f.bins)
        ]
        np.testing.assert_allclose(got, expected)


def test_counters_hold_the_same_counts_as_the_in_process_window(
    registry: CollectorRegistry, make_monitor: Callable[..., ModelMonitor],
    train: pd.DataFrame, profile: Profile,
) -> None:
    mon = make_monitor(window=100_000)
    live = train.sample(700, random_state=1).copy()
    live["income"] *= 1.3
    mon.check_inputs(live.iloc[:500])
    for row in live.iloc[500:].to_dict("records"):  # the single-row path too
        mon.check_inputs(row)
    mon.record_predictions(["approve"] * 50 + ["reject"] * 150, scores=np.linspace(0, 1, 200))
    mon.quality.flush()  # type: ignore[union-attr]

    tracker = mon.quality
    assert tracker is not None and tracker.inputs is not None
    window_counts, _ = tracker.inputs.window.snapshot()  # type: ignore[union-attr]
    layout = tracker.inputs.layout
    assert layout is not None
    from_counters = np.concatenate([
        _live_counts(registry, "feature", f.bins, feature=f.name) for f in layout.features
    ])
    np.testing.assert_array_equal(from_counters, window_counts)
    # ...so the statistic computed from the counters is the in-process one.
    drift = tracker.drift()
    scores = layout.scores(from_counters)
    for j, f in enumerate(layout.features):
        assert scores.psi[j] == drift[f.name]["psi"]
    assert profile.score is not None and profile.prediction is not None
    score_counts = _live_counts(registry, "score", profile.score.bins)
    assert BinLayout([profile.score]).scores(score_counts).js[0] == drift["__score__"]["js"]
    assert _live_counts(registry, "prediction", profile.prediction.bins).sum() == 200


def test_counts_reach_the_counters_without_a_flush_call(registry: CollectorRegistry) -> None:
    """The background flusher brings them in (the idle tail of traffic too)."""
    profile = Profile.from_data(pd.DataFrame({"x": np.arange(100.0)}), bins=4)
    mon = ModelMonitor("credit", "1", registry=registry, profile=profile)
    mon.check_inputs({"x": 1.0})  # the single-row path
    mon.check_inputs(pd.DataFrame({"x": [99.0, 60.0]}))  # and a batch
    deadline = time.monotonic() + 30 * FLUSH_SECONDS
    while time.monotonic() < deadline:
        if _live_counts(registry, "feature", 4, feature="x").sum() == 3:
            break
        time.sleep(0.05)
    assert _live_counts(registry, "feature", 4, feature="x").tolist() == [1, 0, 1, 1]


def test_a_feature_whose_bins_do_not_fit_the_budget_gets_none(registry: CollectorRegistry) -> None:
    profile = Profile.from_data(
        pd.DataFrame({f"f{i}": np.arange(100.0) for i in range(4)}), bins=10
    )
    # 10 bins cost 30 series (counter, its _created, reference gauge): room for two features.
    counters = BinCounters(MetricSet(registry, max_series=75), "credit", "1", "feature",
                           profile.features)
    index = np.array([[1, 15, 25, 35], [5, 12, 29, 39]])
    counters.add_bins(index)
    counters.flush()
    present = [
        f.name for f in profile.features
        if registry.get_sample_value("modelmon_feature_cumulative_bin_values_total", {
            **MODEL, "feature": f.name, "bin": "9", "previous_bin": "8"}) is not None
    ]
    # Whole features only: a partial histogram would give a wrong statistic.
    assert present == ["f0", "f1"]
    assert _live_counts(registry, "feature", 10, feature="f1").tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    assert registry.get_sample_value(
        "modelmon_series_budget_exceeded_total",
        {"metric": "feature_cumulative_bin_values_total"},
    ) == 2
