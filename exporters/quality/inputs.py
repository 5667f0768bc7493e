"""Input data quality and feature drift: what ``check_inputs`` does.

Per call: count missing, out-of-range, wrongly typed values and unseen
categories per feature, and schema violations; bin the drift features' values
into the sliding window. Batches are vectorized with numpy; one dict row takes
a pure-Python path because numpy's per-call overhead would dominate.
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter

from modelmon.exporters.quality.bin_counters import BinCounters, BinSeriesAllowance
from modelmon.exporters.quality.columns import ABSENT, RawBatch, read_batch
from modelmon.exporters.quality.drift import (
    BinLayout,
    DriftScores,
    bin_numeric,
    numeric_edge_matrix,
)
from modelmon.exporters.quality.profile import FeatureProfile, Profile
from modelmon.exporters.quality.values import TYPE_ERROR, category_key, is_missing, numeric_value
from modelmon.exporters.quality.window import SlidingCounts
from modelmon.metrics import MetricSet

log = logging.getLogger(__name__)

SCHEMA_KINDS = ("missing_column", "unexpected_column", "column_count", "unreadable_input")


def select_drift_features(
    profile: Profile, allowlist: Sequence[str] | None, top_k: int
) -> list[FeatureProfile]:
    """The features that get drift gauges: the allowlist, else the top-K by importance."""
    if allowlist is not None:
        unknown = [n for n in allowlist if n not in profile.feature_names]
        if unknown:
            raise ValueError(
                f"drift_features: {', '.join(map(repr, unknown))} not in the profile's features "
                f"({', '.join(profile.feature_names[:10])}{', ...' if len(profile.features) > 10 else ''})"
            )
        wanted = set(allowlist)
        return [f for f in profile.features if f.name in wanted]
    features = list(profile.features)
    if len(features) <= top_k:
        return features
    if any(f.importance is not None for f in features):
        ranked = sorted(features, key=lambda f: -(f.importance or 0.0))[:top_k]
        keep = {f.name for f in ranked}
        return [f for f in features if f.name in keep]
    log.warning(
        "profile has %d features and no importances: drift is tracked for the first %d; pass "
        "drift_features=[...] or importances to Profile.from_data to choose",
        len(features), top_k,
    )
    return features[:top_k]


class _Feature:
    """Everything the row path needs about one feature, precomputed."""

    __slots__ = (
        "name", "numeric", "lo", "hi", "edges", "offset", "categories", "other", "vocabulary",
        "drift", "missing", "out_of_range", "type_errors", "unseen",
    )

    def __init__(
        self, f: FeatureProfile, offset: int | None, children: tuple[Counter, ...]
    ) -> None:
        self.name = f.name
        self.numeric = f.kind == "numeric"
        self.lo = -math.inf if f.min is None else f.min
        self.hi = math.inf if f.max is None else f.max
        self.edges = list(f.edges)
        self.drift = offset is not None
        self.offset = offset or 0
        self.categories = {c: self.offset + i for i, c in enumerate(f.categories)}
        self.other = self.offset + len(f.categories)
        self.vocabulary = f.vocabulary
        self.missing, self.out_of_range, self.type_errors, self.unseen = children


class InputChecker:
    def __init__(
        self,
        profile: Profile,
        metrics: MetricSet,
        model: str,
        version: str,
        drift_features: list[FeatureProfile],
        window: SlidingCounts | None,
        bin_allowance: BinSeriesAllowance | None = None,
    ) -> None:
        self.profile = profile
        self._names = list(profile.feature_names)
        self._index = {n: i for i, n in enumerate(self._names)}
        labels = (model, version)
        limit = metrics.limiter.limit
        children = {}
        for name in self._names:
            children[name] = tuple(
                metrics.counter(metric).labels(*labels, limit(metric, "feature", name))
                for metric in ("feature_missing_total", "feature_out_of_range_total",
                               "feature_type_errors_total", "feature_unseen_category_total")
            )
        self._rows = metrics.counter("input_rows_total").labels(*labels)
        schema = metrics.counter("schema_violations_total")
        self._schema = {kind: schema.labels(*labels, kind) for kind in SCHEMA_KINDS}

        self.layout = BinLayout(drift_features) if drift_features else None
        self.window = window if self.layout is not None else None
        self.bin_counters = (
            BinCounters(metrics, model, version, "feature", drift_features, bin_allowance)
            if self.layout is not None else None
        )
        offsets = {}
        if self.layout is not None:
            offsets = {f.name: int(o) for f, o in zip(drift_features, self.layout.offsets, strict=True)}
        self._features = [
            _Feature(f, offsets.get(f.name), children[f.name]) for f in profile.features
        ]
        self._lock = threading.Lock()
        self.version = 0  # bumped on every window update; drift caches key on it

        # Vectorized path: numeric features as a block.
        self._numeric = [i for i, f in enumerate(self._features) if f.numeric]
        self._categorical = [i for i, f in enumerate(self._features) if not f.numeric]
        self._numeric_positions = np.array(self._numeric, dtype=np.int64)
        feats = self._features
        self._lo = np.array([feats[i].lo for i in self._numeric])
        self._hi = np.array([feats[i].hi for i in self._numeric])
        drift_numeric = [k for k, i in enumerate(self._numeric) if feats[i].drift]
        self._drift_numeric = np.array(drift_numeric, dtype=np.int64)
        self._drift_numeric_edges = numeric_edge_matrix(
            [self.profile.features[self._numeric[k]] for k in drift_numeric]
        )
        self._drift_numeric_offsets = np.array(
            [feats[self._numeric[k]].offset for k in drift_numeric], dtype=np.int64
        )
        # Column of each drift feature in the rows x drift-features index matrix.
        column = {} if self.layout is None else {
            f.name: j for j, f in enumerate(self.layout.features)
        }
        self._drift_column = column
        self._drift_numeric_columns = np.array(
            [column[self._names[self._numeric[k]]] for k in drift_numeric], dtype=np.int64
        )

    # -- one dict row ------------------------------------------------------------

    def check_row(self, row: Mapping[str, Any]) -> None:
        bins: list[int] = []
        absent = 0
        for f in self._features:
            v = row.get(f.name, ABSENT)
            if f.numeric:
                cls = type(v)
                if cls is float or cls is int:
                    x = v
                    if x != x:
                        f.missing.inc()
                        continue
                elif v is ABSENT:
                    absent += 1
                    continue
                else:
                    x = numeric_value(v)
                    if x is None:
                        f.missing.inc()
                        continue
                    if x is TYPE_ERROR:
                        f.type_errors.inc()
                        continue
                if x < f.lo or x > f.hi:
                    f.out_of_range.inc()
                if f.drift:
                    bins.append(f.offset + bisect_left(f.edges, x))
                continue
            if v is ABSENT:
                absent += 1
                continue
            key = v if type(v) is str else None
            if key is None:
                if is_missing(v):
                    f.missing.inc()
                    continue
                key = category_key(v)
                if key is None:
                    f.type_errors.inc()
                    continue
            b = f.categories.get(key)
            if b is None:
                b = f.other
                if f.vocabulary is not None and key not in f.vocabulary:
                    f.unseen.inc()
            if f.drift:
                bins.append(b)
        self._rows.inc()
        if absent:
            self._schema["missing_column"].inc(absent)
        unexpected = len(row) - (len(self._features) - absent)
        if unexpected > 0:
            self._schema["unexpected_column"].inc(unexpected)
        if self.window is not None:
            with self._lock:
                self.window.add_row(bins)
                self.bin_counters.add_row(bins)  # type: ignore[union-attr]
                self.version += 1

    # -- batches -----------------------------------------------------------------

    def check_batch(self, X: Any) -> None:
        batch = read_batch(X, self._names, self._index)
        n = batch.rows
        for kind, count in batch.schema.items():
            self._schema[kind].inc(count)
        if n == 0 or (batch._frame is None and batch._array is None and batch._dicts is None):
            if n:
                self._rows.inc(n)
            return
        self._rows.inc(n)
        absent_total = 0
        drift_index = (
            np.empty((n, len(self.layout.features)), dtype=np.int64) if self.layout else None
        )
        if self._numeric:
            values, extra, absent_total = self._numeric_values(batch)
            nan = np.isnan(values)
            missing = nan.sum(axis=0)
            with np.errstate(invalid="ignore"):
                out_of_range = ((values < self._lo) | (values > self._hi)).sum(axis=0)
            feats = self._features
            for k, i in enumerate(self._numeric):
                f = feats[i]
                if missing[k]:
                    m = int(missing[k]) - extra[k]
                    if m > 0:
                        f.missing.inc(m)
                if out_of_range[k]:
                    f.out_of_range.inc(int(out_of_range[k]))
            if drift_index is not None and self._drift_numeric.size:
                sub = values[:, self._drift_numeric]
                idx = bin_numeric(sub, self._drift_numeric_edges)
                idx += self._drift_numeric_offsets
                idx[nan[:, self._drift_numeric]] = self.layout.total  # type: ignore[union-attr]
                drift_index[:, self._drift_numeric_columns] = idx
        for i in self._categorical:
            absent_total += self._check_categorical(i, batch.objects(self._names[i]), drift_index)
        if absent_total:
            self._schema["missing_column"].inc(absent_total)
        if batch.key_total is not None:
            unexpected = batch.key_total - (n * len(self._features) - absent_total)
            if unexpected > 0:
                self._schema["unexpected_column"].inc(unexpected)
        if drift_index is not None and self.window is not None:
            with self._lock:
                counts = self.window.add_batch(drift_index)
                self.bin_counters.add(counts[:-1])  # type: ignore[union-attr]
                self.version += 1

    def _numeric_values(self, batch: RawBatch) -> tuple[np.ndarray, list[int], int]:
        """rows x numeric-features floats (NaN where there is no value), per feature the
        NaNs that are not missing values (type errors, absent columns), absent total."""
        block = batch.numeric_block(self._numeric_positions)
        if block is not None:
            return block, [0] * len(self._numeric), 0
        values = np.empty((batch.rows, len(self._numeric)))
        extra = []
        absent_total = 0
        feats = self._features
        for k, i in enumerate(self._numeric):
            column, type_errors, absent = batch.numeric(self._names[i])
            values[:, k] = column
            if type_errors:
                feats[i].type_errors.inc(type_errors)
            extra.append(type_errors + absent)
            absent_total += absent
        return values, extra, absent_total

    def _check_categorical(
        self, i: int, values: list[Any], drift_index: np.ndarray | None
    ) -> int:
        f = self._features[i]
        missing = type_errors = unseen = absent = 0
        trash = self.layout.total if self.layout is not None else 0
        bins = []
        categories = f.categories
        vocabulary = f.vocabulary
        other = f.other
        key: str | None
        for v in values:
            if type(v) is str:
                key = v
            elif v is ABSENT:
                absent += 1
                bins.append(trash)
                continue
            elif is_missing(v):
                missing += 1
                bins.append(trash)
                continue
            else:
                key = category_key(v)
                if key is None:
                    type_errors += 1
                    bins.append(trash)
                    continue
            b = categories.get(key)
            if b is None:
                b = other
                if vocabulary is not None and key not in vocabulary:
                    unseen += 1
            bins.append(b)
        if missing:
            f.missing.inc(missing)
        if type_errors:
            f.type_errors.inc(type_errors)
        if unseen:
            f.unseen.inc(unseen)
        if f.drift and drift_index is not None:
            drift_index[:, self._drift_column[f.name]] = bins
        return absent

    def flush(self) -> None:
        """Bring the fleet drift bin counters up to date now (tests, shutdown)."""
        if self.bin_counters is not None:
            self.bin_counters.flush()

    # -- drift -----------------------------------------------------------------

    def drift(self) -> tuple[DriftScores, int] | None:
        """Drift scores of the current window and its row count."""
        if self.layout is None or self.window is None:
            return None
        with self._lock:
            counts, rows = self.window.snapshot()
        return self.layout.scores(counts), rows
