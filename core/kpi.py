"""The KPI record: one exported metric and what it means for a model.

Names follow Prometheus practice: base units, ``_seconds`` / ``_bytes`` /
ratios 0-1, counters end in ``_total``. ``name`` is stored without the prefix
(``modelmon_`` by default, configurable), so ``full_name()`` gives what a
PromQL query uses.
"""

from __future__ import annotations

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
Group = Literal["service", "http", "ingest", "plugins", "quality", "feedback", "logs", "edge"]
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

    def full_name(self, prefix: str = DEFAULT_PREFIX) -> str:
        return prefix + self.name

    @property
    def sample_suffixes(self) -> tuple[str, ...]:
        """Suffixes of the sample names a scrape shows for this metric."""
        if self.type == "histogram":
            return ("_bucket", "_sum", "_count")
        return ("",)


