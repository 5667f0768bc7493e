"""Grafana dashboards as code (grafanalib), generated from the KPI catalog.

One module per dashboard, each with ``UID``, ``TITLE``, ``GROUPS`` (the
catalog groups whose every KPI it shows) and ``build(prefix)``.
``modelmon dashboards build`` writes them to ``dashboards/json/``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from modelmon.kpi import DEFAULT_PREFIX

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


def render_all(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """File name -> dashboard JSON, for every dashboard."""
    from modelmon.dashboards.common import to_json

    return {
        DASHBOARDS[m.__name__.rsplit(".", 1)[1]]: to_json(m.build(prefix)) for m in modules()
    }
