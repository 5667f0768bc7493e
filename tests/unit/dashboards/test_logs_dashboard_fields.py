"""The Elasticsearch logs dashboard queries fields the shipper's index template
maps (as keywords where it aggregates), on the index the shipper writes."""

from __future__ import annotations

from modelmon.dashboards import logs_elasticsearch as dash
from modelmon.exporters.logs.elasticsearch_sink import DEFAULT_INDEX
from modelmon.exporters.logs.es_setup import mappings


def _field(path: str) -> dict:
    node = {"properties": mappings()["properties"]}
    for part in path.split("."):
        node = node["properties"][part]
    return node


def test_dashboard_fields_are_mapped_by_the_index_template():
    for field in (dash.MODEL_FIELD, dash.VERSION_FIELD, dash.DEVICE_FIELD, dash.LEVEL_FIELD):
        assert _field(field)["type"] == "keyword", field  # terms aggregations need keywords
    assert _field(dash.TIME_FIELD)["type"] == "date"
    for column in dash.TABLE_COLUMNS:
        assert _field(column), column


def test_the_grafana_datasource_index_covers_the_shippers_default_index(tmp_path):
    import fnmatch
    from pathlib import Path

    import yaml

    provisioning = Path(__file__).resolve().parents[3] / "compose" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "modelmon.yml").read_text())
    es = next(s for s in sources["datasources"] if s["type"] == "elasticsearch")
    assert fnmatch.fnmatch(DEFAULT_INDEX, es["jsonData"]["index"])
