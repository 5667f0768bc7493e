"""The reference profile: what the training data looked like, per feature.

A profile is versioned, human-readable JSON (docs/quality.md shows one). Per
feature it keeps the type, the missing rate, and the reference histogram that
drift is measured against: fixed quantile bins for numeric features, the top-K
categories plus an "other" bucket for categorical ones. The same records
describe the model's predictions and scores.

Counts are stored, not only shares, so the reference distribution is exact
and a profile can be audited or rebuilt.
"""

from __future__ import annotations

import calendar
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelmon.exporters.quality.values import category_key, is_missing, to_float_or_none

FORMAT = "modelmon-profile"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DEFAULT_BINS = 10
DEFAULT_TOP_K = 20
DEFAULT_MAX_VOCABULARY = 1000

Kind = Literal["numeric", "categorical"]


class ProfileError(ValueError):
    """A profile cannot be built or loaded; the message names the input and the fix."""


@dataclass(frozen=True)
class FeatureProfile:
    """The reference distribution of one feature (or of predictions / scores).

    Numeric: ``edges`` are the interior bin edges; bin ``i`` holds values in
    ``(edges[i-1], edges[i]]``, the first bin everything <= ``edges[0]`` and
    the last everything above ``edges[-1]``, so ``len(counts) == len(edges) + 1``.
    Categorical: ``categories`` are the top-K values; the last count is "other".
    """

    name: str
    kind: Kind
    count: int
    missing: int
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()
    vocabulary: frozenset[str] | None = None
    importance: float | None = None

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @property
    def bins(self) -> int:
        return len(self.counts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "count": self.count,
            "missing": self.missing,
            "missing_rate": round(self.missing_rate, 6),
        }
        if self.importance is not None:
            out["importance"] = self.importance
        if self.kind == "numeric":
            out.update(min=self.min, max=self.max, edges=list(self.edges))
        else:
            out["categories"] = list(self.categories)
            out["vocabulary"] = None if self.vocabulary is None else sorted(self.vocabulary)
        out["counts"] = list(self.counts)
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> FeatureProfile:
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected an object, got {type(data).__name__}")
        name = _field(data, "name", str, where)
        where = f"{where} ({name})"
        kind = data.get("type")
        if kind not in ("numeric", "categorical"):
            raise ProfileError(f"{where}.type: expected 'numeric' or 'categorical', got {kind!r}")
        counts = _int_list(data.get("counts"), f"{where}.counts")
        count = _field(data, "count", int, where)
        missing = _field(data, "missing", int, where)
        importance = data.get("importance")
        if importance is not None and not _is_number(importance):
            raise ProfileError(f"{where}.importance: expected a number, got {importance!r}")
        if kind == "numeric":
            edges = data.get("edges")
            if not isinstance(edges, list) or not all(_is_number(e) for e in edges):
                raise ProfileError(f"{where}.edges: expected a list of numbers")
            if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                raise ProfileError(f"{where}.edges: must be strictly increasing")
            if len(counts) != len(edges) + 1:
                raise ProfileError(
                    f"{where}.counts: expected {len(edges) + 1} counts for {len(edges)} edges, "
                    f"got {len(counts)}"
                )
            lo, hi = data.get("min"), data.get("max")
            for key, value in (("min", lo), ("max", hi)):
                if value is not None and not _is_number(value):
                    raise ProfileError(f"{where}.{key}: expected a number or null, got {value!r}")
            return cls(
                name, "numeric", count, missing, tuple(counts), tuple(float(e) for e in edges),
                None if lo is None else float(lo), None if hi is None else float(hi),
                importance=None if importance is None else float(importance),
            )
        categories = data.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ProfileError(f"{where}.categories: expected a list of strings")
        if len(counts) != len(categories) + 1:
            raise ProfileError(
                f"{where}.counts: expected {len(categories) + 1} counts (one per category plus "
                f"'other'), got {len(counts)}"
            )
        vocabulary = data.get("vocabulary")
        if vocabulary is not None and (
            not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary)
        ):
            raise ProfileError(f"{where}.vocabulary: expected a list of strings or null")
        return cls(
            name, "categorical", count, missing, tuple(counts),
            categories=tuple(categories),
            vocabulary=None if vocabulary is None else frozenset(vocabulary),
            importance=None if importance is None else float(importance),
        )


@dataclass(frozen=True)
class Profile:
    """Reference profile of a model's inputs, predictions and scores.

    Build one with ``Profile.from_data(...)`` or ``modelmon profile build``;
    save with ``save(path)``, load with ``Profile.load(path)``.
    """

    features: tuple[FeatureProfile, ...]
    model: str = ""
    prediction: FeatureProfile | None = None
    score: FeatureProfile | None = None
    rows: int = 0
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ProfileError(f"features: duplicate feature name(s) {', '.join(dupes)}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> FeatureProfile:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} is not in the profile")

    # -- building -------------------------------------------------------------

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        feature_names: Sequence[str] | None = None,
        model: str = "",
        predictions: Any = None,
        scores: Any = None,
        task: Literal["classification", "regression"] | None = None,
        bins: int = DEFAULT_BINS,
        top_k: int = DEFAULT_TOP_K,
        max_vocabulary: int = DEFAULT_MAX_VOCABULARY,
        categorical: Iterable[str] = (),
        importances: Mapping[str, float] | None = None,
    ) -> Profile:
        """Profile a pandas DataFrame, a 2-D numpy array (with ``feature_names``)
        or a list of dicts; optionally the model's ``predictions`` and ``scores``
        on the same rows (``scores`` may be 1-D or a 2-D probability matrix)."""
        if not 2 <= bins <= 100:
            raise ProfileError(f"bins: expected 2..100 quantile bins (10-20 is usual), got {bins}")
        if top_k < 1:
            raise ProfileError(f"top_k: expected at least 1 category, got {top_k}")
        columns = _columns_of(data, feature_names)
        forced = set(categorical)
        unknown_forced = forced - set(columns)
        if unknown_forced:
            raise ProfileError(
                f"categorical: {', '.join(sorted(unknown_forced))} not among the data's columns"
            )
        importances = dict(importances or {})
        features = []
        rows = 0
        for name, values in columns.items():
            rows = max(rows, len(values))
            kind: Kind = "categorical" if name in forced else _infer_kind(values)
            features.append(
                _profile_column(name, values, kind, bins, top_k, max_vocabulary,
                                importances.get(name))
            )
        prediction = None
        if predictions is not None:
            pred_values = _one_dimensional(predictions, "predictions")
            if task is None:
                kind = _infer_kind(pred_values, floats_are_numeric=True)
            else:
                kind = "categorical" if task == "classification" else "numeric"
            prediction = _profile_column(
                "prediction", pred_values, kind, bins, top_k, max_vocabulary, None
            )
        score = None
        if scores is not None:
            score = _profile_column(
                "score", confidence_of(scores), "numeric", bins, top_k, max_vocabulary, None
            )
        return cls(tuple(features), model, prediction, score, rows)

    # -- (de)serialization ----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "score": None if self.score is None else self.score.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: Any, source: str = "profile") -> Profile:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ProfileError(
                f"{source}: not a modelmon profile (expected \"format\": \"{FORMAT}\"); build one "
                "with 'modelmon profile build'"
            )
        version = data.get("format_version")
        if version not in SUPPORTED_VERSIONS:
            raise ProfileError(
                f"{source}: profile format_version {version!r} is not supported by this modelmon "
                f"(it reads version {', '.join(map(str, SUPPORTED_VERSIONS))}); upgrade modelmon "
                "or rebuild the profile with 'modelmon profile build'"
            )
        raw_features = data.get("features")
        if not isinstance(raw_features, list):
            raise ProfileError(f"{source}: features: expected a list of feature objects")
        features = tuple(
            FeatureProfile.from_dict(f, f"{source}: features[{i}]")
            for i, f in enumerate(raw_features)
        )
        extra = {}
        for key in ("prediction", "score"):
            value = data.get(key)
            extra[key] = None if value is None else FeatureProfile.from_dict(value, f"{source}: {key}")
        created = data.get("created_at")
        try:
            created_at = float(
                calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
            ) if isinstance(created, str) else time.time()
        except ValueError:
            created_at = time.time()
        model = data.get("model") or ""
        rows = data.get("rows") or 0
        # int() of a list or of inf is a TypeError/OverflowError, past every caller that
        # reports a bad profile (a configuration bundle's profiles included).
        if isinstance(rows, bool) or not isinstance(rows, int | float) or not math.isfinite(rows) \
                or rows < 0:
            raise ProfileError(f"{source}: rows: expected the number of rows profiled, got {rows!r}")
        return cls(features, str(model), extra["prediction"], extra["score"], int(rows), created_at)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(f"profile {path}: cannot read it ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"profile {path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, f"profile {path}")


# What ``ModelMonitor(profile=...)`` accepts: a Profile, a path to its JSON, or
# that JSON loaded (checked by Profile.from_dict).
ProfileSource = Profile | str | Path | Mapping[str, object]


def as_profile(profile: ProfileSource | None) -> Profile | None:
    """What ``ModelMonitor(profile=...)`` accepts: a Profile, a path, or its dict."""
    if profile is None or isinstance(profile, Profile):
        return profile
    if isinstance(profile, str | Path):
        return Profile.load(profile)
    if isinstance(profile, Mapping):
        return Profile.from_dict(profile)
    raise ProfileError(
        f"profile: expected a modelmon.Profile, a path to profile.json or its dict, "
        f"got {type(profile).__name__}"
    )


# -- helpers ------------------------------------------------------------------


def confidence_of(scores: Any) -> list[Any]:
    """One confidence per row: the score itself, or the top probability of a row."""
    array = np.asarray(scores, dtype=object) if not isinstance(scores, np.ndarray) else scores
    if array.ndim == 2:
        numeric = np.asarray(array, dtype=np.float64)
        return list(np.max(numeric, axis=1)) if numeric.shape[1] else []
    if array.ndim == 0:
        return [array.item()]
    return list(array)


def _columns_of(data: Any, feature_names: Sequence[str] | None) -> dict[str, list[Any]]:
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # a pandas DataFrame
        return {str(c): _column_values(data[c].to_numpy()) for c in data.columns}
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ProfileError(f"data: expected a 2-D array of rows x features, got {data.ndim}-D")
        if feature_names is None:
            raise ProfileError("feature_names: required for a numpy array (one name per column)")
        if len(feature_names) != data.shape[1]:
            raise ProfileError(
                f"feature_names: {len(feature_names)} names for {data.shape[1]} columns"
            )
        return {str(n): _column_values(data[:, i]) for i, n in enumerate(feature_names)}
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        names: dict[str, None] = {}
        for row in data:
            names.update(dict.fromkeys(map(str, row)))
        if feature_names is not None:
            names = dict.fromkeys(feature_names)
        return {n: [row.get(n) for row in data] for n in names}
    raise ProfileError(
        f"data: expected a pandas DataFrame, a 2-D numpy array with feature_names, or a list "
        f"of dicts, got {type(data).__name__}"
    )


def _column_values(column: np.ndarray) -> Any:
    """Integer and float columns stay numpy arrays (profiled vectorized); others become lists."""
    if column.dtype.kind in "iuf":
        return column.astype(np.float64)
    return column.tolist()


def _one_dimensional(values: Any, where: str) -> list[Any]:
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ProfileError(f"{where}: expected one value per row (1-D), got shape {array.shape}")
    rows: list[Any] = array.tolist()
    return rows


def _infer_kind(values: Sequence[Any] | np.ndarray, floats_are_numeric: bool = False) -> Kind:
    """Numeric when every present value is a number (bools are categories)."""
    if isinstance(values, np.ndarray):  # from _column_values: a float array
        return "numeric"
    seen_float = False
    present = False
    for v in values:
        if is_missing(v):
            continue
        present = True
        if isinstance(v, bool | np.bool_) or isinstance(v, str):
            return "categorical"
        if isinstance(v, float | np.floating):
            seen_float = True
        elif not isinstance(v, int | np.integer):
            return "categorical"
    if not present:
        return "numeric"
    if floats_are_numeric and not seen_float:
        return "categorical"  # integer predictions are class ids
    return "numeric"


def _profile_column(
    name: str,
    values: Sequence[Any] | np.ndarray,
    kind: Kind,
    bins: int,
    top_k: int,
    max_vocabulary: int,
    importance: float | None,
) -> FeatureProfile:
    if kind == "numeric":
        if isinstance(values, np.ndarray):
            present = values[~np.isnan(values)]
        else:
            floats = [to_float_or_none(v) for v in values]
            present = np.array([f for f in floats if f is not None], dtype=np.float64)
        missing = len(values) - len(present)
        finite = present[np.isfinite(present)]
        if finite.size == 0:
            return FeatureProfile(name, "numeric", int(present.size), missing, (int(present.size),),
                                  importance=importance)
        distinct = np.unique(finite)
        if distinct.size <= bins:
            # Few distinct values: one bin per value, so drift and KS are exact.
            edges = distinct[:-1]
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        index = np.searchsorted(edges, present, side="left")
        counts = np.bincount(index, minlength=edges.size + 1)
        return FeatureProfile(
            name, "numeric", int(present.size), missing, tuple(int(c) for c in counts),
            tuple(float(e) for e in edges), float(finite.min()), float(finite.max()),
            importance=importance,
        )
    # Values that cannot be a category (lists, dicts) count as missing here.
    keys = [k for k in (category_key(v) for v in values if not is_missing(v)) if k is not None]
    missing = len(values) - len(keys)
    freq = Counter(keys)
    top = [k for k, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]
    other = len(keys) - sum(freq[k] for k in top)
    vocabulary = frozenset(freq) if len(freq) <= max_vocabulary else None
    return FeatureProfile(
        name, "categorical", len(keys), missing, (*(freq[k] for k in top), other),
        categories=tuple(top), vocabulary=vocabulary, importance=importance,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProfileError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _int_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ProfileError(f"{where}: expected a non-empty list of counts >= 0")
    return value
