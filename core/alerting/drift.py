"""Fleet drift: PSI, Jensen-Shannon and binned KS computed by Prometheus.

Every process exports its live histogram on the reference bins as cumulative
counters and the reference as cumulative shares
(``modelmon.exporters.quality.bin_counters``). These rules sum the counters
over every replica, worker and device of a model version and compute the same
statistics as the in-process ``BinLayout.scores``, with the same epsilon:

- ``<level>:<kind>_cumulative_bin_values:increase<w>``: fleet counts of bins
  ``0..bin`` over the window;
- ``<level>:<kind>_bin_share:ratio<w>`` and ``..._cumulative_bin_share:ratio<w>``:
  live shares per bin and cumulative (absent while the window has no value);
- ``<level>:<kind>_reference_cumulative_share:max`` and
  ``..._reference_bin_share:max``: the reference, the same on every replica,
  and ``..._reference_bin_share:sum_xlog2x`` (its part of Jensen-Shannon);
- ``<level>:<kind>_drift:<w>{method="psi"|"js"|"ks"}``: the statistics
  (KS for numeric features only), and ``<level>:<kind>_drift_values:<w>``, the
  values they rest on.

A bin's own count is its cumulative series minus the one named by its
``previous_bin`` label (PromQL has no running sum over a label, but it joins).

The window's counts are ``max_over_time - min_over_time`` of each counter: the
exact number of values between the first and the last sample in the window.
``increase()`` would extrapolate every series to the window's edges by its own
factor (it stops at the counter's zero point for a series that starts near 0),
which weights replicas by their scrape phase and sparse bins differently from
busy ones; ratios of counts would then differ from the counts of the rows.
Only a series whose counter reset inside the window (a restarted process under
the same labels) falls back to ``increase()``.
"""

from __future__ import annotations

from typing import Any

from modelmon.alerting.common import has, record
from modelmon.catalog.quality import NO_PREVIOUS_BIN, PSI_EPSILON
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text

# kind -> the labels that identify one distribution besides the bin
KINDS: dict[str, tuple[str, ...]] = {
    "feature": ("model", "version", "feature"),
    "prediction": ("model", "version"),
    "score": ("model", "version"),
}
METHODS = ("psi", "js", "ks")


def level(prefix: str) -> str:
    """The recording-rule level of a prefix: ``modelmon_`` -> ``modelmon``."""
    return prefix.rstrip("_") or "modelmon"


def drift_series(prefix: str, kind: str, window: str) -> str:
    """The name of the fleet drift series, e.g. ``modelmon:feature_drift:1h``."""
    return f"{level(prefix)}:{kind}_drift:{window}"


def drift_values_series(prefix: str, kind: str, window: str) -> str:
    """Values in the window behind ``drift_series`` (per feature for features)."""
    return f"{level(prefix)}:{kind}_drift_values:{window}"


def _by(labels: tuple[str, ...], *extra: str) -> str:
    return ", ".join((*labels, *extra))


def _own_bins(cumulative: str, keep: str) -> str:
    """Per-bin values from a cumulative vector: series k minus series k - 1."""
    return (
        f"max by ({keep}) (\n"
        f"    {cumulative}\n"
        f"  - ignoring (bin) group_left ()\n"
        f"    label_replace({cumulative}, \"previous_bin\", \"$1\", \"bin\", \"(.*)\")\n"
        f"  or\n"
        f"    {cumulative}{{previous_bin=\"{NO_PREVIOUS_BIN}\"}}\n"
        f")"
    )


def recording_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, lv = config.prefix, level(config.prefix)
    eps = f"{number_text(PSI_EPSILON)}"
    rules: list[dict[str, Any]] = []
    for kind, group in KINDS.items():
        counter = f"{kind}_cumulative_bin_values_total"
        gauge = f"{kind}_reference_cumulative_share"
        if not (has(catalog, counter, (*group, "bin", "previous_bin"))
                and has(catalog, gauge, (*group, "bin", "previous_bin", "kind"))):
            continue
        g, gb = _by(group), _by(group, "bin")
        ref_cum = f"{lv}:{kind}_reference_cumulative_share:max"
        ref = f"{lv}:{kind}_reference_bin_share:max"
        rules.append(record(ref_cum, f"max by ({_by(group, 'bin', 'previous_bin', 'kind')}) "
                                     f"({p}{gauge})"))
        rules.append(record(ref, _own_bins(ref_cum, gb)))
        ref_xlogx = f"{lv}:{kind}_reference_bin_share:sum_xlog2x"
        rules.append(record(ref_xlogx, f"sum by ({g}) (({ref} > 0) * log2({ref} > 0))"))
        for w in config.quality.drift_windows:
            series = f"{p}{counter}[{w}]"
            counts = f"{lv}:{kind}_cumulative_bin_values:increase{w}"
            share = f"{lv}:{kind}_bin_share:ratio{w}"
            cum_share = f"{lv}:{kind}_cumulative_bin_share:ratio{w}"
            values = drift_values_series(p, kind, w)
            drift = drift_series(p, kind, w)
            rules.append(record(counts, (
                f"sum by ({_by(group, 'bin', 'previous_bin')}) (\n"
                f"    (max_over_time({series}) - min_over_time({series}))\n"
                f"  unless\n"
                f"    resets({series}) > 0\n"
                f"  or\n"
                f"    increase({series})\n"
                f")"
            )))
            rules.append(record(values, f"max by ({g}) ({counts})"))
            rules.append(record(share, (
                f"{_own_bins(counts, gb)}\n/ on ({g}) group_left ()\n({values} > 0)"
            )))
            rules.append(record(cum_share, (
                f"max by ({gb}) ({counts})\n/ on ({g}) group_left ()\n({values} > 0)"
            )))
            live, reference = f"clamp_min({share}, {eps})", f"clamp_min({ref}, {eps})"
            rules.append(record(drift, (
                f"sum by ({g}) (\n"
                f"  ({live} - {reference})\n"
                f"  * ln({live} / {reference})\n"
                f")"
            ), {"method": "psi"}))
            # JS^2 = H(m) - (H(p) + H(q)) / 2 in bits, as sums of x log2 x: three joins
            # per bin instead of eight for the p log2(p/m) + q log2(q/m) form, and the
            # reference's own term is recorded once for every window.
            both = f"({share} + {ref})"
            rules.append(record(drift, (
                f"sqrt(clamp(\n"
                f"  0.5 * (\n"
                f"      sum by ({g}) (({share} > 0) * log2({share} > 0))\n"
                f"    + on ({g}) {ref_xlogx}\n"
                f"    - sum by ({g}) (({both} > 0) * log2(({both} > 0) / 2))\n"
                f"  ),\n"
                f"  0, 1\n"
                f"))"
            ), {"method": "js"}))
            rules.append(record(drift, (
                f"max by ({g}) (\n"
                f"  abs({cum_share} - on ({gb}) {ref_cum}{{kind=\"numeric\"}})\n"
                f")"
            ), {"method": "ks"}))
    return rules
