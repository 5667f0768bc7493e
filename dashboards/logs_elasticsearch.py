"""Logs on an Elasticsearch datasource: errors over time by model, recent error events.

The field names are those of the events modelmon ships (ECS plus the model
namespace); change them here if an ingest pipeline renames them.
"""

from __future__ import annotations

import json
from typing import Any

import attr
from grafanalib.core import Dashboard, GridPos, Table
from grafanalib.elasticsearch import (
    CountMetricAgg,
    DateHistogramGroupBy,
    ElasticsearchTarget,
    TermsGroupBy,
)

from modelmon.dashboards.common import Row, dashboard
from modelmon.dashboards.common import timeseries as _prom_timeseries
from modelmon.thresholds import ThresholdsConfig

NAME = "logs-elasticsearch"
UID = f"modelmon-{NAME}"
TITLE = "modelmon / Logs (Elasticsearch)"
ELASTICSEARCH = {"type": "elasticsearch", "uid": "${datasource}"}

TIME_FIELD = "@timestamp"
MODEL_FIELD = "model.name"
VERSION_FIELD = "model.version"
DEVICE_FIELD = "host.name"
LEVEL_FIELD = "log.level"
ERROR_FILTER = (
    f"{LEVEL_FIELD}:error AND {MODEL_FIELD}:$model AND {VERSION_FIELD}:$version "
    f"AND {DEVICE_FIELD}:$device"
)
TABLE_COLUMNS = (
    TIME_FIELD, MODEL_FIELD, VERSION_FIELD, DEVICE_FIELD, "event.action", "error.type",
    "error.message", "message", "trace.id",
)


def _es_variable(name: str, label: str, field: str) -> dict[str, Any]:
    query = json.dumps({"find": "terms", "field": field})
    return {
        "name": name, "label": label, "type": "query", "datasource": ELASTICSEARCH,
        "definition": query, "query": query,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "includeAll": True, "allValue": "*", "multi": True,
        "hide": 0, "options": [], "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False,
    }


def rows() -> list[Row]:
    errors_over_time = _prom_timeseries(
        "Error events by model",
        "Log events at level error per time bucket, split by model: a spike that follows a "
        "deploy or a drift alert shows which model it hits.",
        "short",
        [("", "")],  # replaced by the Elasticsearch target below
        width=24,
        stacked=True,
    )
    errors_over_time = attr.evolve(
        errors_over_time,
        dataSource=ELASTICSEARCH,
        targets=[ElasticsearchTarget(
            query=ERROR_FILTER,
            refId="A",
            timeField=TIME_FIELD,
            metricAggs=[CountMetricAgg(id=1)],
            bucketAggs=[
                TermsGroupBy(id=2, field=MODEL_FIELD, size=10, orderBy="_count"),
                DateHistogramGroupBy(id=3, field=TIME_FIELD),
            ],
        )],
    )
    recent = Table(
        title="Recent error events",
        description="The latest 200 error events with their model, version, device, error "
        "type and message, and the trace id that links them to the request.",
        dataSource=ELASTICSEARCH,
        unit="string",
        gridPos=GridPos(h=12, w=24, x=0, y=0),
        targets=[{
            "refId": "A",
            "datasource": ELASTICSEARCH,
            "query": ERROR_FILTER,
            "timeField": TIME_FIELD,
            "metrics": [{"id": "1", "type": "raw_data", "settings": {"size": "200"}}],
            "bucketAggs": [],
        }],
        transformations=[{
            "id": "organize",
            "options": {
                "indexByName": {c: i for i, c in enumerate(TABLE_COLUMNS)},
                "excludeByName": {},
                "renameByName": {},
            },
        }],
        sortBy=[],
    )
    return [Row("Errors", [errors_over_time, recent])]


def build(config: ThresholdsConfig) -> Dashboard:
    del config  # Elasticsearch documents have no metric prefix, and no alert reads them.
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Error events shipped by modelmon to Elasticsearch: errors over time by "
        "model and a table of recent error events.",
        tags=["logs", "elasticsearch"],
        rows=rows(),
        variables=[
            {
                "name": "datasource", "label": "Elasticsearch", "type": "datasource",
                "query": "elasticsearch", "current": {}, "hide": 0, "includeAll": False,
                "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False,
            },
            _es_variable("device", "Device", DEVICE_FIELD),
            _es_variable("model", "Model", MODEL_FIELD),
            _es_variable("version", "Version", VERSION_FIELD),
        ],
    )
