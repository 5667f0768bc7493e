"""Fleet drift on a real Prometheus: three model servers (one under gunicorn with two
workers) each see a different share and slice of the rows; the generated recording
rules give the PSI, JS and KS that numpy computes over the union of all rows."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from scipy.spatial.distance import jensenshannon

from modelmon.alerting import rule_groups
from modelmon.demo.processes import PrometheusProcess, prometheus_config, running_prometheus
from modelmon.exporters.quality import Profile
from modelmon.exporters.quality.drift import PSI_EPSILON
from modelmon.exporters.quality.profile import FeatureProfile
from modelmon.thresholds import ThresholdsConfig

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
MODEL = {"model": "fleet-model", "version": "2"}
COUNTRIES = ["de", "fr", "it", "es", "nl"]
# The exact statistic where the counts are exact: float rounding only.
TOLERANCE = 1e-6


# -- data and the batch statistic computed with numpy ---------------------------------


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, list[Any]]:
    amount = rng.lognormal(4 + shift, 0.6, n)
    age = rng.integers(18, 90, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan  # missing values are not drift values
    country = rng.choice(COUNTRIES, n, p=[0.4, 0.25, 0.2, 0.1, 0.05] if not shift
                         else [0.1, 0.1, 0.2, 0.3, 0.3])
    predictions = np.where(rng.random(n) < (0.3 + shift / 4), "reject", "approve")
    scores = rng.beta(5 - 2 * shift, 2, n)
    return {"amount": amount.tolist(), "age": age.tolist(), "country": country.tolist(),
            "predictions": predictions.tolist(), "scores": scores.tolist()}


def _concat(*parts: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}


def _slice(data: dict[str, list[Any]], start: int, stop: int) -> dict[str, list[Any]]:
    return {k: v[start:stop] for k, v in data.items()}


def _live_counts(f: FeatureProfile, values: list[Any]) -> np.ndarray:
    if f.kind == "numeric":
        x = np.asarray(values, dtype=float)
        x = x[~np.isnan(x)]
        return np.bincount(np.searchsorted(f.edges, x, side="left"), minlength=f.bins)
    index = {c: i for i, c in enumerate(f.categories)}
    return np.bincount([index.get(v, len(f.categories)) for v in values], minlength=f.bins)


def _statistics(f: FeatureProfile, values: list[Any]) -> dict[str, float]:
    counts = _live_counts(f, values)
    live = counts / counts.sum()
    ref = np.asarray(f.counts) / sum(f.counts)
    a, b = np.clip(live, PSI_EPSILON, None), np.clip(ref, PSI_EPSILON, None)
    out = {"psi": float(np.sum((a - b) * np.log(a / b))),
           "js": float(jensenshannon(live, ref, base=2))}
    if f.kind == "numeric":
        out["ks"] = float(np.max(np.abs(np.cumsum(live) - np.cumsum(ref))))
    return out


def _expected(profile: Profile, data: dict[str, list[Any]]) -> dict[tuple[str, str, str], float]:
    """(kind, feature, method) -> the batch statistic over ``data``."""
    out = {}
    for f in profile.features:
        for method, value in _statistics(f, data[f.name]).items():
            out[("feature", f.name, method)] = value
    for kind, f, key in (("prediction", profile.prediction, "predictions"),
                         ("score", profile.score, "scores")):
        assert f is not None
        for method, value in _statistics(f, data[key]).items():
            out[(kind, "", method)] = value
    return out


# -- the fleet ------------------------------------------------------------------------


@dataclass
class Fleet:
    servers: dict[str, str]  # name -> base URL
    prom: PrometheusProcess
    profile: Profile

    def send(self, name: str, data: dict[str, list[Any]], batch: int = 25) -> set[int]:
        """Post ``data`` to server ``name`` in batches; the pids that answered."""
        n = len(data["amount"])

        def post(start: int) -> int:
            part = _slice(data, start, start + batch)
            rows = [{"amount": a, "age": None if math.isnan(g) else g, "country": c}
                    for a, g, c in zip(part["amount"], part["age"], part["country"], strict=True)]
            r = requests.post(f"{self.servers[name]}/observe", timeout=30, json={
                "rows": rows, "predictions": part["predictions"], "scores": part["scores"]})
            r.raise_for_status()
            return int(r.json()["pid"])

        with ThreadPoolExecutor(4) as pool:
            return set(pool.map(post, range(0, n, batch)))

    def drift(self, window: str) -> dict[tuple[str, str, str], float]:
        result = self.prom.query(f'{{__name__=~"modelmon:(feature|prediction|score)_drift:{window}"}}')
        return {
            (r["metric"]["__name__"].split(":")[1].removesuffix("_drift"),
             r["metric"].get("feature", ""), r["metric"]["method"]): float(r["value"][1])
            for r in result
        }

    def values(self, window: str) -> dict[str, float]:
        """Values the rules counted per feature, and for predictions and scores."""
        result = self.prom.query(
            f'{{__name__=~"modelmon:(feature|prediction|score)_drift_values:{window}"}}')
        return {
            r["metric"].get("feature") or r["metric"]["__name__"].split(":")[1].split("_")[0]:
            float(r["value"][1])
            for r in result
        }

    def wait_values(self, window: str, expected: dict[str, float], timeout: float = 30) -> None:
        """Until the rules have seen exactly ``expected`` values in ``window`` (a request
        is scraped half done at times: its rows counted, its predictions not yet)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            seen = self.values(window)
            if seen == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{window}: values {seen}, expected {expected}")


def _value_counts(data: dict[str, list[Any]]) -> dict[str, float]:
    n = float(len(data["amount"]))
    return {
        "amount": n, "country": n, "prediction": n, "score": n,
        "age": float(np.sum(~np.isnan(np.asarray(data["age"], dtype=float)))),
    }


NOTHING = dict.fromkeys(("amount", "age", "country", "prediction", "score"), 0.0)


def _assert_equal(got: dict[tuple[str, str, str], float],
                  expected: dict[tuple[str, str, str], float]) -> None:
    assert set(got) == set(expected)
    worst = max(abs(got[k] - expected[k]) for k in expected)
    assert worst <= TOLERANCE, {k: (got[k], expected[k]) for k in expected
                                if abs(got[k] - expected[k]) > TOLERANCE}


@pytest.fixture
def fleet(start_server: Callable[..., Any], tmp_path: Path, prometheus_binary: str
          ) -> Iterator[Fleet]:
    rng = np.random.default_rng(11)
    train = _rows(rng, 20_000)
    profile = Profile.from_data(
        pd.DataFrame({k: train[k] for k in ("amount", "age", "country")}), model="fleet-model",
        predictions=train["predictions"], scores=train["scores"], task="classification",
        categorical=["country"],
    )
    profile_path = tmp_path / "profile.json"
    profile.save(profile_path)
    env = {"FLEET_PROFILE": str(profile_path)}
    servers = {
        "a": start_server([sys.executable, str(HERE / "fleet_app.py"), "{port}"], env=env).url,
        "b": start_server([sys.executable, str(HERE / "fleet_app.py"), "{port}"], env=env).url,
        "c": start_server(
            [sys.executable, "-m", "gunicorn", "-c",
             "python:modelmon.exporters.service.gunicorn_config", "--workers", "2",
             "--threads", "2", "--pythonpath", str(HERE), "--bind", "127.0.0.1:{port}",
             "fleet_app:app"],
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc")},
        ).url,
    }
    config = replace(ThresholdsConfig(), evaluation_interval="1s")
    config = replace(config, quality=replace(config.quality, drift_windows=("20s", "1m")))
    groups = [g for g in rule_groups(config) if g["name"] == "modelmon.drift.recording"]
    rules = tmp_path / "drift.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    targets = [url.removeprefix("http://") for url in servers.values()]
    with running_prometheus(
        prometheus_config(targets, extra={"rule_files": [str(rules)]}),
        binary=prometheus_binary, workdir=tmp_path / "prom",
    ) as prom:
        fleet = Fleet(servers, prom, profile)
        # Every bin of every process exists at 0 before the first row.
        prom.wait_for('count(count by (instance) '
                      '(modelmon_feature_cumulative_bin_values_total)) == 3')
        fleet.wait_values("1m", NOTHING)
        yield fleet


def test_fleet_drift_equals_the_batch_statistic_over_every_replicas_rows(fleet: Fleet) -> None:
    rng = np.random.default_rng(5)
    # Phase 1: every process is younger than both windows.
    a1, b1, c1 = _rows(rng, 500, 0.1), _rows(rng, 200, 0.4), _rows(rng, 300, 0.0)
    fleet.send("a", a1)
    fleet.send("b", b1)
    pids = fleet.send("c", c1, batch=10)
    first = _concat(a1, b1, c1)
    fleet.wait_values("1m", _value_counts(first))
    _assert_equal(fleet.drift("1m"), _expected(fleet.profile, first))

    # Phase 2: after the 20s window has moved past phase 1, every series spans it.
    fleet.wait_values("20s", NOTHING, timeout=40)
    a2, b2, c2 = _rows(rng, 150, 0.0), _rows(rng, 600, 0.2), _rows(rng, 250, 0.6)
    fleet.send("a", a2)
    fleet.send("b", b2)
    pids |= fleet.send("c", c2, batch=10)
    second = _concat(a2, b2, c2)
    fleet.wait_values("20s", _value_counts(second))
    fleet.wait_values("1m", _value_counts(_concat(first, second)))
    _assert_equal(fleet.drift("20s"), _expected(fleet.profile, second))
    _assert_equal(fleet.drift("1m"), _expected(fleet.profile, _concat(first, second)))
    assert len(pids) == 2, f"both gunicorn workers must have seen rows, got pids {pids}"


def test_one_drifting_replica_moves_the_fleet_value_by_its_share(fleet: Fleet) -> None:
    rng = np.random.default_rng(9)
    drifted, clean_b, clean_c = _rows(rng, 300, 1.0), _rows(rng, 400), _rows(rng, 300)
    fleet.send("a", drifted)
    fleet.send("b", clean_b)
    fleet.send("c", clean_c, batch=10)
    union = _concat(drifted, clean_b, clean_c)
    fleet.wait_values("20s", _value_counts(union))
    _assert_equal(fleet.drift("20s"), _expected(fleet.profile, union))

    # The fleet histogram is the mixture: 30% of the rows from the drifting replica.
    amount = fleet.profile.feature("amount")
    mixture = (_live_counts(amount, drifted["amount"])
               + _live_counts(amount, clean_b["amount"] + clean_c["amount"])) / 1000
    shares = fleet.prom.query('modelmon:feature_bin_share:ratio20s{feature="amount"}')
    got = np.zeros(amount.bins)
    for r in shares:
        got[int(r["metric"]["bin"])] = float(r["value"][1])
    np.testing.assert_allclose(got, mixture, atol=1e-12)
    per_process = {
        r["metric"]["instance"]: float(r["value"][1])
        for r in fleet.prom.query('modelmon_feature_drift{feature="amount",method="psi"}')
    }
    a = fleet.servers["a"].removeprefix("http://")
    b = fleet.servers["b"].removeprefix("http://")
    fleet_psi = fleet.drift("20s")[("feature", "amount", "psi")]
    # Neither replica's own value is the fleet's: the drifting one overstates it,
    # a clean one misses it.
    assert per_process[b] < 0.1 < fleet_psi < per_process[a]

