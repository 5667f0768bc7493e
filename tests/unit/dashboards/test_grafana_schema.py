"""The generated dashboards use only what Grafana's current dashboard schema
describes (issue 12 finding 14).

The allow-list (``modelmon.dashboards.grafana_schema``) is distilled from the
``@grafana/schema`` package's TypeScript types; see
``modelmon.dashboards.schema_keys`` for the versions and how to regenerate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelmon.dashboards import DASHBOARDS, render_all
from modelmon.dashboards.schema_keys import _interfaces, problems

REPO = Path(__file__).resolve().parents[3]
RENDERED = {name: json.loads(body) for name, body in render_all().items()}
COMMITTED = {name: json.loads((REPO / "dashboards/json" / name).read_text())
             for name in DASHBOARDS.values()}
BOTH = [pytest.param(d, id=f"{source}:{name}")
        for source, dashboards in (("generated", RENDERED), ("committed", COMMITTED))
        for name, d in dashboards.items()]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out += panel.get("panels", []) if panel.get("type") == "row" else []
    return out


@pytest.mark.parametrize("dashboard", BOTH)
def test_only_properties_of_the_current_schema_and_no_nulls(dashboard):
    assert problems(dashboard) == []


@pytest.mark.parametrize("dashboard", BOTH)
def test_schema_version_grid_and_rows(dashboard):
    assert dashboard["schemaVersion"] >= 39
    for panel in _panels(dashboard):
        assert {"h", "w", "x", "y"} <= set(panel.get("gridPos", {})), panel.get("title")
        if panel["type"] == "row":
            assert "targets" not in panel, f"row {panel.get('title')!r} carries targets"


@pytest.mark.parametrize("dashboard", BOTH)
def test_datasource_variable_and_units_on_every_panel(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']!r} has no unit"


def test_uids_are_stable_and_named_after_the_file():
    again = {name: json.loads(body) for name, body in render_all().items()}
    for name, dashboard in RENDERED.items():
        assert dashboard["uid"] == name.removesuffix(".json")
        assert again[name]["uid"] == dashboard["uid"] == COMMITTED[name]["uid"]


def test_the_checker_names_legacy_properties_and_nulls():
    legacy = {
        "schemaVersion": 39, "rows": [], "hideControls": False, "time": {"from": "a", "to": "b"},
        "templating": {"list": []},
        "panels": [{"type": "row", "id": 1, "collapsed": False, "panels": [], "targets": [],
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}},
                   {"type": "timeseries", "span": 6, "title": None, "gridPos": {"h": 1, "w": 2,
                                                                               "x": 0, "y": 0}}],
    }
    found = "\n".join(problems(legacy))
    for fragment in ("hideControls, rows not in Dashboard", "targets not in RowPanel",
                     "span not in Panel", "panels[1].title: null"):
        assert fragment in found, found


def test_the_distiller_reads_properties_nested_objects_and_extends():
    source = """
    /** doc */
    export interface Base { a?: string; }
    export interface Thing extends common.Base, Other {
      // comment
      b: number;
      c?: {
        inner: string;
      };
      d: Array<{ e: string }>;
    }
    export interface Other { f: boolean; }
    """
    found = _interfaces(source)
    assert found["Thing"] == (["Base", "Other"], ["b", "c", "d"])
