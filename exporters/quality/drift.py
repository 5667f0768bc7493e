"""Drift of binned distributions: PSI, Jensen-Shannon distance, binned KS.

All features' bins live in one flat vector (``BinLayout``): feature ``j``
owns ``counts[offsets[j] : offsets[j] + sizes[j]]``. Every statistic is
computed for all features at once with segment reductions, so the cost is
O(total bins), independent of the window length.

Definitions (docs/quality.md has the derivations):

- PSI = sum_i (c_i - r_i) * ln(c_i / r_i), with the live (c) and reference (r)
  bin shares floored at ``PSI_EPSILON`` so empty bins stay finite.
- JS = sqrt(JSD(c, r)) with base-2 logarithms: the Jensen-Shannon distance in
  [0, 1], equal to ``scipy.spatial.distance.jensenshannon(c, r, base=2)``.
- KS = max over bin edges of |C_ref(e) - C_live(e)| (numeric features only).
  It is a lower bound of the exact two-sample KS statistic D, and
  D - KS <= max over bins of max(c_i, r_i) (``ks_error_bound``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelmon.catalog.quality import PSI_EPSILON
from modelmon.exporters.quality.profile import FeatureProfile

__all__ = ["METHODS", "PSI_EPSILON", "BinLayout", "DriftScores", "bin_numeric",
           "numeric_edge_matrix"]
METHODS = ("psi", "js", "ks")


@dataclass(frozen=True)
class DriftScores:
    """Per-feature statistics; NaN where the window (or reference) has no values."""

    psi: np.ndarray
    js: np.ndarray
    ks: np.ndarray
    ks_error_bound: np.ndarray
    values: np.ndarray  # non-missing values per feature in the window

    def method(self, name: str) -> np.ndarray:
        return {"psi": self.psi, "js": self.js, "ks": self.ks}[name]


class BinLayout:
    """The bins of several features (or of predictions / scores) side by side."""

    def __init__(self, features: Sequence[FeatureProfile]) -> None:
        if not features:
            raise ValueError("a BinLayout needs at least one feature")
        self.features = tuple(features)
        self.sizes = np.array([f.bins for f in features], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)
        self.total = int(self.sizes.sum())
        self.numeric = np.array([f.kind == "numeric" for f in features])
        ref = np.concatenate([np.asarray(f.counts, dtype=np.float64) for f in features])
        ref_totals = np.add.reduceat(ref, self.offsets)
        self.reference_totals = ref_totals
        with np.errstate(invalid="ignore", divide="ignore"):
            self.reference = ref / np.repeat(ref_totals, self.sizes)
        # The segment id of every bin, for broadcasting per-feature values.
        self._segment = np.repeat(np.arange(len(features)), self.sizes)

    def scores(self, counts: np.ndarray) -> DriftScores:
        """Drift of the live ``counts`` (length ``total``) against the reference."""
        counts = np.asarray(counts, dtype=np.float64)
        totals = np.add.reduceat(counts, self.offsets)
        with np.errstate(invalid="ignore", divide="ignore"):
            live = counts / np.repeat(totals, self.sizes)
        ref = self.reference
        offsets = self.offsets

        a = np.maximum(live, PSI_EPSILON)
        b = np.maximum(ref, PSI_EPSILON)
        psi = np.add.reduceat((a - b) * np.log(a / b), offsets)

        mid = (live + ref) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            kl_live = np.where(live > 0, live * np.log2(live / mid), 0.0)
            kl_ref = np.where(ref > 0, ref * np.log2(ref / mid), 0.0)
        jsd = 0.5 * (np.add.reduceat(kl_live, offsets) + np.add.reduceat(kl_ref, offsets))
        js = np.sqrt(np.clip(jsd, 0.0, 1.0))

        diff = np.cumsum(ref - live)
        before = np.concatenate(([0.0], diff))[offsets]
        cdf_gap = np.abs(diff - np.repeat(before, self.sizes))
        ks = np.maximum.reduceat(cdf_gap, offsets)
        bound = np.maximum.reduceat(np.maximum(live, ref), offsets)

        empty = (totals <= 0) | (self.reference_totals <= 0)
        for arr in (psi, js, ks, bound):
            arr[empty] = np.nan
        ks[~self.numeric] = np.nan
        bound[~self.numeric] = np.nan
        return DriftScores(psi, js, ks, bound, totals)


def numeric_edge_matrix(features: Sequence[FeatureProfile]) -> np.ndarray:
    """Interior edges of numeric features, padded with +inf to one width."""
    width = max((len(f.edges) for f in features), default=0)
    out = np.full((len(features), max(width, 1)), np.inf)
    for j, f in enumerate(features):
        out[j, : len(f.edges)] = f.edges
    return out


def bin_numeric(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value: how many edges are strictly below it.

    ``values`` is rows x features, ``edges`` features x width (padded with
    +inf); the same rule as ``np.searchsorted(edges, v, side="left")``. NaN
    gets 0; callers mask missing values themselves.
    """
    out = np.zeros(values.shape, dtype=np.int64)
    for k in range(edges.shape[1]):
        out += values > edges[:, k]
    return out
