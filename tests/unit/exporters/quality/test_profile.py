"""Reference profiles: building from every input type, JSON round trip, versioning, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelmon
from modelmon.cli import main
from modelmon.exporters.quality import Profile, ProfileError


def test_numeric_feature_has_quantile_bins_with_exact_reference_counts(train: pd.DataFrame) -> None:
    profile = Profile.from_data(train, bins=10)
    income = profile.feature("income")
    assert income.kind == "numeric"
    assert income.bins == 10 and len(income.edges) == 9
    assert sum(income.counts) == len(train)
    # Bin i holds (edges[i-1], edges[i]]: recount with numpy's right-closed rule.
    expected = np.bincount(np.searchsorted(income.edges, train["income"], side="left"), minlength=10)
    assert list(income.counts) == expected.tolist()
    assert income.min == train["income"].min() and income.max == train["income"].max()
    # Quantile bins: each holds about a tenth of the rows.
    assert max(income.counts) / len(train) < 0.11


def test_low_cardinality_numeric_gets_one_bin_per_value() -> None:
    profile = Profile.from_data(pd.DataFrame({"kids": [0, 1, 2, 0, 1, 0] * 10}))
    kids = profile.feature("kids")
    assert kids.edges == (0.0, 1.0) and kids.counts == (30, 20, 10)


def test_categorical_top_k_and_other_bucket() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5
    profile = Profile.from_data(pd.DataFrame({"c": values}), top_k=2)
    c = profile.feature("c")
    assert c.kind == "categorical"
    assert c.categories == ("a", "b") and c.counts == (50, 30, 20)
    assert c.vocabulary == frozenset("abcd")


def test_missing_rate_and_type_inference() -> None:
    data = [{"x": 1.5, "y": "u", "flag": True}, {"x": None, "y": "v", "flag": False},
            {"x": 2.0, "y": None, "flag": True}, {"x": float("nan"), "y": "u", "flag": None}]
    profile = Profile.from_data(data)
    assert profile.feature("x").kind == "numeric"
    assert profile.feature("x").missing_rate == 0.5
    assert profile.feature("y").kind == "categorical"
    assert profile.feature("flag").kind == "categorical"  # booleans are categories
    assert profile.feature("flag").categories == ("True", "False")


def test_numpy_array_needs_feature_names() -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(ProfileError, match="feature_names"):
        Profile.from_data(X)
    profile = Profile.from_data(X, feature_names=["a", "b", "c"])
    assert profile.feature_names == ("a", "b", "c")


def test_same_profile_from_dataframe_array_and_dicts(train: pd.DataFrame) -> None:
    numeric = train[["income", "age", "score"]]
    from_frame = Profile.from_data(numeric)
    from_array = Profile.from_data(numeric.to_numpy(), feature_names=list(numeric.columns))
    from_dicts = Profile.from_data(numeric.to_dict("records"))
    for other in (from_array, from_dicts):
        assert [f.to_dict() for f in other.features] == [f.to_dict() for f in from_frame.features]


def test_predictions_and_scores_profiles(profile: Profile) -> None:
    assert profile.prediction is not None and profile.prediction.kind == "categorical"
    assert set(profile.prediction.categories) == {"approve", "reject"}
    assert profile.score is not None and profile.score.kind == "numeric"
    probabilities = np.array([[0.2, 0.8], [0.6, 0.4]])
    p = Profile.from_data([{"a": 1}, {"a": 2}], predictions=[1, 0], scores=probabilities)
    assert p.score is not None and (p.score.min, p.score.max) == (0.6, 0.8)
    assert p.prediction is not None and p.prediction.kind == "categorical"  # integer class ids
    reg = Profile.from_data([{"a": 1}, {"a": 2}], predictions=[1.5, 2.5])
    assert reg.prediction is not None and reg.prediction.kind == "numeric"


def test_json_round_trip_is_human_readable(profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    profile.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "modelmon-profile" and data["format_version"] == 1
    assert data["features"][0]["name"] == "income"
    assert "\n  " in path.read_text()  # indented
    loaded = Profile.load(path)
    assert loaded.to_dict() == profile.to_dict()


def test_unknown_version_fails_with_a_clear_message(profile: Profile, tmp_path: Path) -> None:
    data = profile.to_dict()
    data["format_version"] = 99
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=r"format_version 99 is not supported.*upgrade modelmon"):
        Profile.load(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("format"), "not a modelmon profile"),
    (lambda d: d["features"][0].__setitem__("counts", [1, 2]), r"features\[0\] \(income\)\.counts"),
    (lambda d: d["features"][0].__setitem__("edges", [3, 2, 1] + [0] * 6), "strictly increasing"),
    (lambda d: d["features"][3].__setitem__("type", "text"), r"features\[3\] \(country\)\.type"),
])
def test_corrupt_profiles_name_the_field(profile: Profile, mutate, message: str) -> None:
    data = profile.to_dict()
    mutate(data)
    with pytest.raises(ProfileError, match=message):
        Profile.from_dict(data)


def test_bad_arguments_are_refused(train: pd.DataFrame) -> None:
    with pytest.raises(ProfileError, match="bins"):
        Profile.from_data(train, bins=1)
    with pytest.raises(ProfileError, match="categorical: nope"):
        Profile.from_data(train, categorical=["nope"])
    with pytest.raises(ProfileError, match="data: expected"):
        Profile.from_data("train.csv")


def test_modelmon_profile_is_the_public_name() -> None:
    assert modelmon.Profile is Profile


def test_monitor_accepts_a_profile_path(profile: Profile, tmp_path: Path, make_monitor) -> None:
    path = tmp_path / "profile.json"
    profile.save(path)
    mon = make_monitor(str(path))
    assert mon.quality.profile.to_dict() == profile.to_dict()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_builds_a_profile(train: pd.DataFrame, tmp_path: Path, suffix: str, capsys) -> None:
    data = train.assign(id=range(len(train)), pred=np.where(train["score"] > 0, "hi", "lo"),
                        p=np.clip(train["score"] / 4 + 0.5, 0, 1))
    path = tmp_path / f"train{suffix}"
    data.to_csv(path, index=False) if suffix == ".csv" else data.to_parquet(path)
    out = tmp_path / "profile.json"
    code = main(["profile", "build", "--data", str(path), "--model", "credit", "--out", str(out),
                 "--exclude", "id", "--prediction-column", "pred", "--score-column", "p",
                 "--bins", "20"])
    assert code == 0
    profile = Profile.load(out)
    assert profile.model == "credit"
    assert profile.feature_names == ("income", "age", "score", "country")
    assert profile.feature("income").bins == 20
    assert profile.prediction is not None and set(profile.prediction.categories) == {"hi", "lo"}
    assert main(["profile", "show", str(out)]) == 0
    assert "country" in capsys.readouterr().out


def test_cli_names_the_bad_flag(train: pd.DataFrame, tmp_path: Path, capsys) -> None:
    path = tmp_path / "train.csv"
    train.to_csv(path, index=False)
    code = main(["profile", "build", "--data", str(path), "--model", "m", "--out",
                 str(tmp_path / "p.json"), "--prediction-column", "nope"])
    assert code == 2
    assert "--prediction-column: nope not among the columns" in capsys.readouterr().err
    assert main(["profile", "build", "--data", str(tmp_path / "missing.csv"), "--model", "m",
                 "--out", str(tmp_path / "p.json")]) == 2
