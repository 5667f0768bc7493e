"""modelmon serve with per-model reference profiles: /ingest prediction events
with features get data-quality counts and drift, like an in-process monitor."""

from __future__ import annotations

import re

import numpy as np
import pytest

from modelmon import Profile
from modelmon.config import ConfigError, serve_config_from_mapping
from modelmon.exporters.service.app import create_app


@pytest.fixture
def profile_path(tmp_path):
    rng = np.random.default_rng(0)
    data = [{"amount": float(a), "age": float(b)} for a, b in rng.normal(0, 1, (2000, 2))]
    path = tmp_path / "credit.json"
    Profile.from_data(data, model="credit").save(path)
    return path


def test_prediction_events_are_checked_against_the_models_profile(registry, tmp_path, profile_path):
    config = serve_config_from_mapping({"quality": {"models": {"credit": {
        "profile": profile_path.name,
        "options": {"window": 200, "feedback_db": "{model}-{version}.sqlite"},
    }}}}, base_dir=tmp_path)
    client = create_app(config, registry=registry).test_client()
    rng = np.random.default_rng(1)
    events = [{"type": "prediction", "model": "credit", "version": "2", "prediction": "ok",
               "features": {"amount": float(a) + 3.0, "age": float(b)}}
              for a, b in rng.normal(0, 1, (300, 2))]
    events.append({"type": "prediction", "model": "credit", "version": "2", "prediction": "ok",
                   "features": {"amount": 1e9, "age": 0.0}})
    r = client.post("/ingest", json=events)
    assert r.status_code == 200, r.json
    labels = {"model": "credit", "version": "2"}
    get = registry.get_sample_value
    client.get("/metrics")  # drift gauges are computed at scrape time
    assert get("modelmon_feature_out_of_range_total", {**labels, "feature": "amount"}) >= 1
    amount_psi = get("modelmon_feature_drift", {**labels, "feature": "amount", "method": "psi"})
    age_psi = get("modelmon_feature_drift", {**labels, "feature": "age", "method": "psi"})
    assert amount_psi > 0.25 > age_psi, (amount_psi, age_psi)
    # the feedback store of this model version lives beside the config file
    assert (tmp_path / "credit-2.sqlite").exists()


def test_models_without_a_profile_still_count_predictions(registry, profile_path, tmp_path):
    config = serve_config_from_mapping(
        {"quality": {"models": {"credit": {"profile": str(profile_path)}}}})
    client = create_app(config, registry=registry).test_client()
    r = client.post("/ingest", json={"type": "prediction", "model": "other", "prediction": "a"})
    assert r.status_code == 200
    assert registry.get_sample_value("modelmon_feature_drift", {
        "model": "other", "version": "unknown", "feature": "amount", "method": "psi"}) is None


@pytest.mark.parametrize("quality,fragment", [
    ({"models": {"credit": {"profile": "missing.json"}}}, "quality.models.credit.profile: file"),
    ({"models": {"credit": {"profile_path": "x"}}}, "quality.models.credit: expected"),
    ({"model": {}}, "quality: expected a mapping with 'models'"),
    ({"models": {"credit": {"options": [1]}}}, "quality.models.credit.options"),
    # A misspelt option fails when the file is read, not at the model's first event.
    ({"models": {"credit": {"options": {"windows": 100}}}},
     "quality.models.credit.options: unknown option(s) windows; known options are drift_features"),
])
def test_quality_config_errors_name_the_field(tmp_path, quality, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        serve_config_from_mapping({"quality": quality}, base_dir=tmp_path)
