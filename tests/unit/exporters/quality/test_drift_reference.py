"""Drift statistics checked against independent numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.drift import PSI_EPSILON, BinLayout


def _shares(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / counts.sum()


def _psi(live: np.ndarray, ref: np.ndarray) -> float:
    a, b = np.clip(live, PSI_EPSILON, None), np.clip(ref, PSI_EPSILON, None)
    return float(np.sum((a - b) * np.log(a / b)))


def _drift_of(train: np.ndarray, live: np.ndarray, bins: int = 10):
    profile = Profile.from_data(pd.DataFrame({"x": train}), bins=bins)
    f = profile.feature("x")
    layout = BinLayout([f])
    counts = np.bincount(np.searchsorted(f.edges, live, side="left"), minlength=f.bins)
    return f, layout.scores(counts)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 1.0, 3.0])
def test_psi_js_ks_match_reference_computations(shift: float) -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, 20_000)
    live = rng.normal(shift, 1, 5_000)
    f, scores = _drift_of(train, live)
    ref = np.asarray(f.counts) / sum(f.counts)
    cur = _shares(live, f.edges)
    assert scores.psi[0] == pytest.approx(_psi(cur, ref), rel=1e-9, abs=1e-12)
    assert scores.js[0] == pytest.approx(jensenshannon(cur, ref, base=2), rel=1e-9, abs=1e-12)
    # Binned KS: the largest CDF gap at the bin edges.
    binned = np.max(np.abs(np.cumsum(ref) - np.cumsum(cur)))
    assert scores.ks[0] == pytest.approx(binned, abs=1e-12)


@pytest.mark.parametrize("bins", [10, 20])
@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.05, 1.0), (0.3, 1.0), (0.0, 1.5),
                                          (1.0, 0.5), (4.0, 1.0)])
def test_binned_ks_is_within_the_documented_bound_of_exact_ks(
    bins: int, shift: float, scale: float
) -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(0, 1, 10_000)
    live = rng.normal(shift, scale, 3_000)
    _, scores = _drift_of(train, live, bins)
    exact = ks_2samp(train, live).statistic
    # Documented: 0 <= D_exact - KS_binned <= max over bins of max(live share, reference share)
    assert scores.ks[0] <= exact + 1e-12
    assert exact - scores.ks[0] <= scores.ks_error_bound[0] + 1e-12


def test_thresholds_separate_noise_from_shift() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(0, 1, 20_000)
    _, same = _drift_of(train, rng.normal(0, 1, 5_000))
    _, moderate = _drift_of(train, rng.normal(0.5, 1, 5_000))
    _, major = _drift_of(train, rng.normal(1.0, 1, 5_000))
    assert same.psi[0] < 0.01  # noise floor ~ (bins - 1) * (1/n + 1/m)
    assert 0.1 <= moderate.psi[0] < 0.4
    assert major.psi[0] > 0.25


def test_categorical_psi_and_js_use_top_k_plus_other() -> None:
    profile = Profile.from_data([{"c": v} for v in ["a"] * 60 + ["b"] * 30 + ["c"] * 10], top_k=2)
    f = profile.feature("c")
    layout = BinLayout([f])
    live = np.array([20, 30, 50])  # a, b, other
    scores = layout.scores(live)
    ref = np.array([0.6, 0.3, 0.1])
    cur = live / live.sum()
    assert scores.psi[0] == pytest.approx(_psi(cur, ref))
    assert scores.js[0] == pytest.approx(jensenshannon(cur, ref, base=2))
    assert np.isnan(scores.ks[0])


def test_several_features_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(4)
    data = [{"a": rng.normal(), "b": rng.exponential(), "c": str(rng.integers(0, 5))}
            for _ in range(3000)]
    profile = Profile.from_data(data)
    layout = BinLayout(profile.features)
    counts = rng.integers(0, 100, layout.total)
    together = layout.scores(counts)
    for j, f in enumerate(profile.features):
        part = counts[layout.offsets[j]: layout.offsets[j] + layout.sizes[j]]
        alone = BinLayout([f]).scores(part)
        for method in ("psi", "js", "ks"):
            np.testing.assert_allclose(together.method(method)[j], alone.method(method)[0],
                                       rtol=1e-12, equal_nan=True)


def test_empty_window_gives_nan_not_an_error() -> None:
    profile = Profile.from_data([{"x": float(i)} for i in range(100)])
    scores = BinLayout(profile.features).scores(np.zeros(profile.features[0].bins))
    assert np.isnan(scores.psi[0]) and np.isnan(scores.js[0]) and np.isnan(scores.ks[0])
