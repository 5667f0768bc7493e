"""Fixtures of the quality tests: synthetic training data with a known profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import Profile
from modelmon.exporters.service.monitor import ModelMonitor

MODEL = {"model": "credit", "version": "1"}


@pytest.fixture
def train() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 5000
    return pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 80, n).astype(float),
        "score": rng.normal(0, 1, n),
        "country": rng.choice(["DE", "FR", "IT", "ES"], n, p=[0.4, 0.3, 0.2, 0.1]),
    })


@pytest.fixture
def profile(train: pd.DataFrame) -> Profile:
    rng = np.random.default_rng(7)
    predictions = rng.choice(["approve", "reject"], len(train), p=[0.7, 0.3])
    scores = rng.beta(5, 2, len(train))
    return Profile.from_data(train, model="credit", predictions=predictions, scores=scores)


@pytest.fixture
def make_monitor(registry: CollectorRegistry, profile: Profile) -> Callable[..., ModelMonitor]:
    def make(profile_: Any = profile, **options: Any) -> ModelMonitor:
        return ModelMonitor("credit", "1", registry=registry, profile=profile_,
                            quality_options=options)

    return make


@pytest.fixture
def sample(registry: CollectorRegistry) -> Callable[..., float | None]:
    """sample("modelmon_x_total", feature="age"): a sample of this test's monitor."""

    def read(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {**MODEL, **labels})

    return read
