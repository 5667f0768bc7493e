"""The KPI record: one exported metric and what it means for a model.

Names follow Prometheus practice: base units, ``_seconds`` / ``_bytes`` /
ratios 0-1, counters end in ``_total``. ``name`` is stored without the prefix
(``modelmon_`` by default, configurable), so ``full_name()`` gives what a
PromQL query uses.

A KPI is checked where it is declared (``exposition_problems``): what
``promtool check metrics`` or a strict OpenMetrics 1.0 parser would refuse in
a scrape never reaches an exporter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_PREFIX = "modelmon_"

MetricType = Literal["counter", "gauge", "histogram"]

# Buckets suited to model inference: 1 ms (small tabular models) to 60 s
# (large generative models). Configurable per deployment.
INFERENCE_DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
# 256 B to 64 MiB in powers of 4: JSON rows to image/tensor payloads.
PAYLOAD_BYTES_BUCKETS: tuple[float, ...] = tuple(float(256 * 4**i) for i in range(10))

# prometheus_client's ways of combining a gauge across gunicorn workers.
MultiprocessMode = Literal[
    "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent",
    "livemostrecent",
]
Group = Literal[
    "service", "http", "ingest", "plugins", "quality", "feedback", "logs", "edge", "containers",
    "gpu",
]
# The Prometheus dashboards of ``modelmon.dashboards`` a KPI can live on; the
# dashboard's uid is ``modelmon-<name>``.
DashboardName = Literal["model-service", "model-quality", "edge-fleet", "log-pipeline"]


@dataclass(frozen=True, slots=True)
class KPI:
    """One exported metric and what it means for a model.

    ``help`` is the one-line Prometheus HELP text; ``meaning`` tells an ML
    engineer what to read into it. ``dashboard`` and ``row`` say where the KPI
    lives: a panel of that row shows it, generated from this entry when no
    hand-written panel of the dashboard does. Which panels and alerts end up
    reading it is not stored here: ``modelmon kpis`` computes it from the
    generated dashboards and rules.
    """

    name: str
    type: MetricType
    unit: str
    labels: tuple[str, ...]
    help: str
    meaning: str
    group: Group
    dashboard: DashboardName
    row: str
    buckets: tuple[float, ...] | None = None
    # How a gauge is aggregated across gunicorn workers in multiprocess mode.
    multiprocess_mode: MultiprocessMode = "all"
    # The device watches this KPI itself: the generated edge rule file
    # (alert_rules/modelmon.edge.rules.yml, modelmon.alerting.device) reads it over
    # the edge agent's own samples, online or offline. Only KPIs a device produces
    # whose alerts need no other device's series (no fleet sums) qualify.
    on_device: bool = False

    def __post_init__(self) -> None:
        problems = exposition_problems(self)
        if problems:
            raise ValueError(f"KPI {self.name!r}: " + "; ".join(problems))

    def full_name(self, prefix: str = DEFAULT_PREFIX) -> str:
        return prefix + self.name

    @property
    def sample_suffixes(self) -> tuple[str, ...]:
        """Suffixes of the sample names a scrape shows for this metric."""
        if self.type == "histogram":
            return ("_bucket", "_sum", "_count")
        return ("",)




# -- what strict consumers refuse ------------------------------------------------

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
# Sample-name suffixes OpenMetrics 1.0 gives to other types: a family whose
# name ends in one could clash with another family's samples, and promtool
# refuses _count/_sum/_bucket on anything but a histogram or summary sample.
_RESERVED_SUFFIXES = ("_count", "_sum", "_bucket", "_created", "_gcount", "_gsum")
# Names promtool's linter calls out: non-base units and unit abbreviations.
_NON_BASE_UNITS = frozenset({
    "milliseconds", "microseconds", "nanoseconds", "minutes", "hours", "days", "weeks",
    "years", "kilobytes", "megabytes", "gigabytes", "terabytes", "kibibytes", "mebibytes",
    "gibibytes", "bits", "percent", "fahrenheit", "kilograms", "milligrams", "kilometers",
    "centimeters", "millimeters", "kilojoules", "amps", "millivolts",
})
_UNIT_ABBREVIATIONS = frozenset({
    "s", "ms", "us", "ns", "sec", "secs", "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib",
    "gib", "m", "h", "d", "min", "mins", "hr", "pct",
})
_TYPE_WORDS = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_RESERVED_LABELS = ("le", "quantile")


def bucket_problems(buckets: Sequence[float] | None) -> list[str]:
    """Why ``buckets`` cannot be a histogram's bounds in a valid scrape ([] when they can).

    Bounds are finite and strictly ascending. Negative bounds are allowed (signed
    regression targets need them): OpenMetrics scrapes then show the histogram
    without ``_sum``/``_count``, as OpenMetrics 1.0 asks (see modelmon.exposition).
    """
    if not buckets:
        return ["a histogram needs buckets"]
    problems = []
    bounds = [float(b) for b in buckets]
    if not all(math.isfinite(b) for b in bounds):
        problems.append(f"buckets {bounds}: bounds must be finite (+Inf is added by itself)")
    elif any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
        problems.append(f"buckets {bounds}: bounds must be strictly ascending")
    return problems


def exposition_problems(kpi: KPI) -> list[str]:
    """What ``promtool check metrics`` or a strict OpenMetrics parser would refuse."""
    name, problems = kpi.name, []
    if not _NAME.match(name):
        problems.append("names are lower snake case ([a-z][a-z0-9_]*): no capitals, no ':'")
    if (kpi.type == "counter") != name.endswith("_total"):
        problems.append("counters, and only counters, end in _total" if kpi.type == "counter"
                        else "only counters end in _total (a sample suffix of counters)")
    reserved = next((s for s in _RESERVED_SUFFIXES if name.endswith(s)), None)
    if reserved:
        problems.append(f"{reserved} is a sample suffix OpenMetrics reserves for other types; "
                        "rename it (a count of things is a plural noun: system_logical_cpus)")
    if name.endswith("_info") != (kpi.type == "gauge" and kpi.unit == "info"):
        problems.append("_info is reserved for info metrics: a gauge of unit 'info' whose "
                        "value is always 1, and every such gauge ends in _info")
    words = set(name.split("_"))
    if words & _NON_BASE_UNITS:
        problems.append(f"use the base unit instead of {sorted(words & _NON_BASE_UNITS)[0]} "
                        "(seconds, bytes, ratio 0-1, celsius)")
    if words & _UNIT_ABBREVIATIONS:
        problems.append(f"unit abbreviated as {sorted(words & _UNIT_ABBREVIATIONS)[0]!r}; "
                        "spell the base unit out (seconds, bytes)")
    if words & _TYPE_WORDS:
        problems.append(f"the metric type ({sorted(words & _TYPE_WORDS)[0]}) does not belong "
                        "in its name")
    for label in kpi.labels:
        if not _LABEL.match(label):
            problems.append(f"label {label!r}: lower snake case, and no leading '__' (reserved)")
        elif label in _RESERVED_LABELS:
            problems.append(f"label {label!r} is reserved for histogram and summary samples")
    if kpi.type == "histogram":
        problems += bucket_problems(kpi.buckets)
    elif kpi.buckets is not None:
        problems.append(f"only histograms have buckets; {kpi.type}s take buckets=None")
    return problems
