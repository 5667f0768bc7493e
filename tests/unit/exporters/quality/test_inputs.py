"""check_inputs: data-quality counters for every input type; garbage never raises."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import Profile
from modelmon.exporters.service.monitor import ModelMonitor

PROFILE = Profile.from_data(pd.DataFrame({
    "age": [20.0, 30.0, 40.0, 50.0, 60.0] * 20,
    "income": np.linspace(1000, 9000, 100),
    "country": ["DE", "FR", "IT", "DE", "FR"] * 20,
}))


@pytest.fixture
def mon(registry: CollectorRegistry) -> ModelMonitor:
    return ModelMonitor("credit", "1", registry=registry, profile=PROFILE)


ROWS = [
    {"age": 35.0, "income": 5000.0, "country": "DE"},  # clean
    {"age": None, "income": float("nan"), "country": "FR"},  # 2 missing
    {"age": 99.0, "income": float("inf"), "country": "XX"},  # 2 out of range, unseen
    {"age": "35", "income": 5000, "country": ["DE"]},  # 2 type errors
    {"age": 30.0, "country": None, "extra": 1, "more": 2},  # missing column, missing, 2 unexpected
]
EXPECTED = {
    ("modelmon_feature_missing_total", "age"): 1,
    ("modelmon_feature_missing_total", "income"): 1,
    ("modelmon_feature_missing_total", "country"): 1,
    ("modelmon_feature_out_of_range_total", "age"): 1,
    ("modelmon_feature_out_of_range_total", "income"): 1,
    ("modelmon_feature_type_errors_total", "age"): 1,
    ("modelmon_feature_type_errors_total", "country"): 1,
    ("modelmon_feature_unseen_category_total", "country"): 1,
}


def _check_counters(sample, rows: int = 5) -> None:
    assert sample("modelmon_input_rows_total") == rows
    for feature in ("age", "income", "country"):
        for metric in ("modelmon_feature_missing_total", "modelmon_feature_out_of_range_total",
                       "modelmon_feature_type_errors_total", "modelmon_feature_unseen_category_total"):
            assert sample(metric, feature=feature) == EXPECTED.get((metric, feature), 0), (metric, feature)
    assert sample("modelmon_schema_violations_total", kind="missing_column") == 1
    assert sample("modelmon_schema_violations_total", kind="unexpected_column") == 2


def test_one_dict_at_a_time(mon: ModelMonitor, sample) -> None:
    for row in ROWS:
        mon.check_inputs(row)
    _check_counters(sample)


def test_list_of_dicts(mon: ModelMonitor, sample) -> None:
    mon.check_inputs(ROWS)
    _check_counters(sample)


def test_dataframe(mon: ModelMonitor, sample) -> None:
    frame = pd.DataFrame(ROWS[:4])
    mon.check_inputs(frame)
    mon.check_inputs(pd.DataFrame([{"age": 30.0, "country": None, "extra": 1, "more": 2}]))
    _check_counters(sample)


def test_numpy_array_in_profile_order(mon: ModelMonitor, sample) -> None:
    X = np.array([[35.0, 5000.0, "DE"], [None, np.nan, "FR"], [99.0, np.inf, "XX"]], dtype=object)
    mon.check_inputs(X)
    assert sample("modelmon_input_rows_total") == 3
    assert sample("modelmon_feature_missing_total", feature="age") == 1
    assert sample("modelmon_feature_out_of_range_total", feature="income") == 1
    assert sample("modelmon_feature_unseen_category_total", feature="country") == 1
    mon.check_inputs(np.zeros((4, 5)))
    assert sample("modelmon_schema_violations_total", kind="column_count") == 4


def test_numeric_frame_fast_path_counts_like_the_row_path(registry: CollectorRegistry, sample) -> None:
    profile = Profile.from_data(pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)}))
    mon = ModelMonitor("credit", "1", registry=registry, profile=profile)
    X = np.array([[1.0, np.nan], [-5.0, 200.0], [np.inf, -np.inf], [50.0, 50.0]])
    mon.check_inputs(X)
    mon.check_inputs(pd.DataFrame(X, columns=["a", "b"]))
    assert sample("modelmon_feature_missing_total", feature="b") == 2
    assert sample("modelmon_feature_out_of_range_total", feature="a") == 4
    assert sample("modelmon_feature_out_of_range_total", feature="b") == 4


GARBAGE_VALUES = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
    st.text(max_size=5), st.booleans(), st.binary(max_size=3), st.just([1, 2]), st.just({"a": 1}),
    st.just(pd.NA), st.just(pd.NaT), st.just(np.float32("nan")), st.just(np.int64(3)),
)
GARBAGE_ROWS = st.dictionaries(
    st.sampled_from(["age", "income", "country", "unknown", ""]), GARBAGE_VALUES, max_size=5
)
GARBAGE_INPUTS = st.one_of(
    GARBAGE_ROWS,
    st.lists(GARBAGE_ROWS, max_size=5),
    st.lists(st.one_of(GARBAGE_ROWS, GARBAGE_VALUES), max_size=4),
    st.lists(st.lists(GARBAGE_VALUES, max_size=4), max_size=4),
    GARBAGE_VALUES,
    st.just(np.array([])), st.just(np.zeros((0, 3))), st.just(np.zeros((2, 3, 4))),
    st.just(pd.DataFrame()), st.just(pd.DataFrame({"age": ["x", None], "zzz": [1, 2]})),
    st.just(pd.DataFrame({"age": pd.array([1, None], dtype="Int64"),
                          "country": pd.Categorical(["DE", None])})),
    st.just("a string"), st.just(object()),
)


@settings(max_examples=300, deadline=None)
@given(X=GARBAGE_INPUTS)
def test_garbage_never_raises_and_never_counts_internal_errors(X) -> None:
    registry = CollectorRegistry()
    mon = ModelMonitor("credit", "1", registry=registry, profile=PROFILE)
    mon.check_inputs(X)
    mon.record_predictions(X, scores=X, request_ids=None)
    assert registry.get_sample_value(
        "modelmon_quality_check_errors_total",
        {"model": "credit", "version": "1", "operation": "check_inputs"},
    ) in (None, 0.0)
    for f in PROFILE.feature_names:
        for method in ("psi", "js"):
            value = registry.get_sample_value(
                "modelmon_feature_drift",
                {"model": "credit", "version": "1", "feature": f, "method": method})
            assert value is None or math.isnan(value) or value >= 0


def test_empty_batches_count_nothing(mon: ModelMonitor, sample) -> None:
    for X in ([], np.zeros((0, 3)), pd.DataFrame(columns=["age", "income", "country"])):
        mon.check_inputs(X)
    assert sample("modelmon_input_rows_total") == 0
    assert sample("modelmon_schema_violations_total", kind="unreadable_input") == 0


def test_without_a_profile_rows_are_still_counted(registry: CollectorRegistry, sample) -> None:
    mon = ModelMonitor("credit", "1", registry=registry)
    mon.check_inputs([{"a": 1}, {"a": 2}])
    assert sample("modelmon_input_rows_total") == 2
    assert registry.get_sample_value("modelmon_feature_drift", {"model": "credit"}) is None


def test_drift_allowlist_and_top_k_bound_the_series(registry: CollectorRegistry) -> None:
    data = pd.DataFrame({f"f{i}": np.arange(50.0) * i for i in range(10)})
    importances = {f"f{i}": float(i) for i in range(10)}
    profile = Profile.from_data(data, importances=importances)
    ModelMonitor("a", "1", registry=registry, profile=profile,
                 quality_options={"drift_top_k": 3}).check_inputs(data)
    ModelMonitor("b", "1", registry=registry, profile=profile,
                 quality_options={"drift_features": ["f0", "f5"]}).check_inputs(data)

    def drifted(model: str) -> set[str]:
        return {
            s.labels["feature"] for m in registry.collect() if m.name == "modelmon_feature_drift"
            for s in m.samples if s.labels["model"] == model
        }

    assert drifted("a") == {"f7", "f8", "f9"}
    assert drifted("b") == {"f0", "f5"}
    with pytest.raises(ValueError, match="drift_features: 'nope'"):
        _ = ModelMonitor("c", "1", registry=registry, profile=profile,
                         quality_options={"drift_features": ["nope"]}).quality
