"""The sliding window: streaming drift equals a batch computation over the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.drift import BinLayout
from modelmon.exporters.service.monitor import ModelMonitor

_RNG = np.random.default_rng(11)
_TRAIN = pd.DataFrame({
    "x": _RNG.normal(0, 1, 3000),
    "y": _RNG.exponential(2.0, 3000),
    "c": _RNG.choice(["a", "b", "c", "d"], 3000),
})
PROFILE = Profile.from_data(_TRAIN, bins=8, top_k=3)
LAYOUT = BinLayout(PROFILE.features)


def _batch_scores(rows: pd.DataFrame):
    """Reference: bin the rows directly from the profile and score them."""
    counts = []
    for f in PROFILE.features:
        values = rows[f.name]
        if f.kind == "numeric":
            v = values.to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            counts.append(np.bincount(np.searchsorted(f.edges, v, side="left"), minlength=f.bins))
        else:
            index = {c: i for i, c in enumerate(f.categories)}
            b = [index.get(x, f.bins - 1) for x in values if isinstance(x, str)]
            counts.append(np.bincount(np.array(b, dtype=int), minlength=f.bins))
    return LAYOUT.scores(np.concatenate(counts))


def _rows(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "x": x,
        "y": rng.exponential(2.0 + shift, n),
        "c": rng.choice(["a", "b", "c", "e"], n),
    })


def _assert_same(tracker_drift: dict, reference) -> None:
    for j, f in enumerate(PROFILE.features):
        for method in ("psi", "js", "ks"):
            np.testing.assert_allclose(
                tracker_drift[f.name][method], reference.method(method)[j], rtol=1e-9,
                atol=1e-12, equal_nan=True,
            )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    window=st.integers(10, 400),
    chunks=st.integers(1, 10),
    sizes=st.lists(st.integers(0, 250), min_size=1, max_size=12),
    single_rows=st.integers(0, 30),
    seed=st.integers(0, 2**16),
)
def test_count_window_streaming_equals_batch_over_the_window(
    window: int, chunks: int, sizes: list[int], single_rows: int, seed: int
) -> None:
    chunks = min(chunks, window)
    mon = ModelMonitor("m", "1", registry=CollectorRegistry(), profile=PROFILE,
                       quality_options={"window": window, "window_chunks": chunks})
    data = _rows(sum(sizes) + single_rows, seed, shift=0.7)
    start = 0
    for size in sizes:  # batches of any size, including empty and larger than the window
        mon.check_inputs(data.iloc[start: start + size])
        start += size
    for record in data.iloc[start:].to_dict("records"):  # then the one-row path
        mon.check_inputs(record)
    rows = mon.quality.window_rows()
    capacity = -(-window // chunks) * chunks
    if len(data) >= capacity:
        assert capacity - capacity // chunks < rows <= capacity
    else:
        assert rows == len(data)
    _assert_same(mon.quality.drift(), _batch_scores(data.iloc[len(data) - rows:]))


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0, 40), st.integers(0, 60)), min_size=1, max_size=15),
    seed=st.integers(0, 2**16),
)
def test_time_window_streaming_equals_batch_over_the_window(
    steps: list[tuple[float, int]], seed: int
) -> None:
    now = [1000.0]
    mon = ModelMonitor("m", "1", registry=CollectorRegistry(), profile=PROFILE,
                       quality_options={"window": "60s", "window_chunks": 6, "clock": lambda: now[0]})
    data = _rows(sum(n for _, n in steps), seed, shift=0.3)
    stamps = []
    start = 0
    for advance, n in steps:
        now[0] += advance
        mon.check_inputs(data.iloc[start: start + n])
        stamps += [now[0]] * n
        start += n
    # The window holds the rows of the current 10 s slot and the 5 before it.
    slot = int(now[0] // 10)
    keep = np.array([int(t // 10) > slot - 6 for t in stamps], dtype=bool)
    assert mon.quality.window_rows() == int(keep.sum())
    _assert_same(mon.quality.drift(), _batch_scores(data[keep]))


def test_time_window_empties_without_traffic() -> None:
    now = [0.0]
    mon = ModelMonitor("m", "1", registry=(reg := CollectorRegistry()), profile=PROFILE,
                       quality_options={"window": "1m", "clock": lambda: now[0]})
    mon.check_inputs(_rows(100, 1, 0.0))
    assert reg.get_sample_value("modelmon_drift_window_rows", {"model": "m", "version": "1"}) == 100
    now[0] += 61
    assert reg.get_sample_value("modelmon_drift_window_rows", {"model": "m", "version": "1"}) == 0
    assert np.isnan(reg.get_sample_value(
        "modelmon_feature_drift", {"model": "m", "version": "1", "feature": "x", "method": "psi"}))


def test_drift_gauges_are_exported_per_feature_and_method() -> None:
    reg = CollectorRegistry()
    mon = ModelMonitor("m", "1", registry=reg, profile=PROFILE, quality_options={"window": 1000})
    mon.check_inputs(_rows(1000, 5, shift=2.0))
    labels = {"model": "m", "version": "1"}
    drift = mon.quality.drift()
    assert reg.get_sample_value("modelmon_feature_drift", {**labels, "feature": "x", "method": "psi"}) \
        == drift["x"]["psi"] > 0.25
    assert reg.get_sample_value("modelmon_feature_drift", {**labels, "feature": "c", "method": "js"}) \
        == drift["c"]["js"]
    # No KS series for a categorical feature.
    assert reg.get_sample_value("modelmon_feature_drift", {**labels, "feature": "c", "method": "ks"}) is None
    assert reg.get_sample_value("modelmon_drift_window_rows", labels) == 1000
