"""Grafana dashboards as code (grafanalib), generated from the KPI catalog and
the thresholds config.

One module per dashboard, each with ``NAME`` (what a KPI's ``dashboard=``
names; the uid is ``modelmon-<NAME>``), ``TITLE``, ``rows(config)`` (its
hand-written panels, row by row) and ``build(config)``, which adds a panel
for every KPI that names the dashboard and that no hand-written panel shows.
``modelmon dashboards build`` writes them to ``dashboards/json/``;
``modelmon kpis`` (``modelmon.dashboards.kpi_docs``) cross-references them
with the catalog and the rules in ``docs/KPIS.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from modelmon.thresholds import ThresholdsConfig

# Module name -> file name of the generated JSON.
DASHBOARDS: dict[str, str] = {
    "model_service": "modelmon-model-service.json",
    "model_quality": "modelmon-model-quality.json",
    "edge_fleet": "modelmon-edge-fleet.json",
    "log_pipeline": "modelmon-log-pipeline.json",
    "logs_elasticsearch": "modelmon-logs-elasticsearch.json",
}


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in DASHBOARDS]


def render_all(config: ThresholdsConfig | None = None) -> dict[str, str]:
    """File name -> dashboard JSON, for every dashboard."""
    from modelmon.dashboards.common import to_json

    config = config or ThresholdsConfig()
    return {
        DASHBOARDS[m.__name__.rsplit(".", 1)[1]]: to_json(m.build(config)) for m in modules()
    }
