"""The property names Grafana's dashboard schema allows, per object kind.

``modelmon.dashboards.grafana_schema`` (generated, committed) is distilled from the TypeScript types
of Grafana's published ``@grafana/schema`` package (the classic dashboard JSON,
schemaVersion 39+: ``raw/dashboard/x/types.gen.d.ts``, the timeseries and
table panel configs, ``common``), plus the Prometheus and Elasticsearch query
types from the last releases that still ship them (Panel.targets is
``Record<string, unknown>`` in the dashboard type itself). The tests check
every generated dashboard against it. To regenerate after a Grafana upgrade::

    npm pack @grafana/schema && tar xzf grafana-schema-*.tgz            # -> package/
    npm pack @grafana/schema@11.6.0 && tar xzf ... -C old               # Elasticsearch query
    npm pack @grafana/schema@10.4.0 && tar xzf ... -C v10               # Prometheus query
    python -m modelmon.dashboards.schema_keys package old/package v10/package \\
        > dashboards/grafana_schema.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# (kind in grafana_schema.KINDS, file under the package's dist/, interface).
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Dashboard", "types/raw/dashboard/x/types.gen.d.ts", "Dashboard"),
    ("Panel", "types/raw/dashboard/x/types.gen.d.ts", "Panel"),
    ("RowPanel", "types/raw/dashboard/x/types.gen.d.ts", "RowPanel"),
    ("GridPos", "types/raw/dashboard/x/types.gen.d.ts", "GridPos"),
    ("DataSourceRef", "types/raw/dashboard/x/types.gen.d.ts", "DataSourceRef"),
    ("FieldConfigSource", "types/raw/dashboard/x/types.gen.d.ts", "FieldConfigSource"),
    ("FieldConfig", "types/raw/dashboard/x/types.gen.d.ts", "FieldConfig"),
    ("FieldColor", "types/raw/dashboard/x/types.gen.d.ts", "FieldColor"),
    ("ThresholdsConfig", "types/raw/dashboard/x/types.gen.d.ts", "ThresholdsConfig"),
    ("Threshold", "types/raw/dashboard/x/types.gen.d.ts", "Threshold"),
    ("VariableModel", "types/raw/dashboard/x/types.gen.d.ts", "VariableModel"),
    ("VariableOption", "types/raw/dashboard/x/types.gen.d.ts", "VariableOption"),
    ("AnnotationContainer", "types/raw/dashboard/x/types.gen.d.ts", "AnnotationContainer"),
    ("AnnotationQuery", "types/raw/dashboard/x/types.gen.d.ts", "AnnotationQuery"),
    ("TimePickerConfig", "types/raw/dashboard/x/types.gen.d.ts", "TimePickerConfig"),
    ("DashboardLink", "types/raw/dashboard/x/types.gen.d.ts", "DashboardLink"),
    ("DataTransformerConfig", "types/raw/dashboard/x/types.gen.d.ts", "DataTransformerConfig"),
    ("timeseries.Options", "types/raw/composable/timeseries/panelcfg/x/types.gen.d.ts", "Options"),
    ("timeseries.FieldConfig", "types/raw/composable/timeseries/panelcfg/x/types.gen.d.ts",
     "FieldConfig"),
    ("timeseries.Legend", "types/raw/composable/timeseries/panelcfg/x/types.gen.d.ts",
     "TimeSeriesLegendOptions"),
    ("table.Options", "types/raw/composable/table/panelcfg/x/types.gen.d.ts", "Options"),
    ("table.FieldConfig", "types/raw/composable/table/panelcfg/x/types.gen.d.ts", "FieldConfig"),
    ("common.VizTooltipOptions", "types/common/common.gen.d.ts", "VizTooltipOptions"),
    ("common.HideSeriesConfig", "types/common/common.gen.d.ts", "HideSeriesConfig"),
    ("common.ScaleDistributionConfig", "types/common/common.gen.d.ts", "ScaleDistributionConfig"),
    ("common.StackingConfig", "types/common/common.gen.d.ts", "StackingConfig"),
    ("common.GraphThresholdsStyleConfig", "types/common/common.gen.d.ts",
     "GraphThresholdsStyleConfig"),
    ("common.TableSortByFieldState", "types/common/common.gen.d.ts", "TableSortByFieldState"),
    ("common.DataQuery", "types/common/common.gen.d.ts", "DataQuery"),
    ("prometheus.DataQuery",
     "esm/raw/composable/prometheus/dataquery/x/PrometheusDataQuery_types.gen.d.ts",
     "PrometheusDataQuery"),
    ("elasticsearch.DataQuery",
     "esm/raw/composable/elasticsearch/dataquery/x/ElasticsearchDataQuery_types.gen.d.ts",
     "ElasticsearchDataQuery"),
)
# Where the schema's own type admits null (Threshold.value: null is the base
# step, "from -Infinity").
NULLABLE = ("Threshold.value",)

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_INTERFACE = re.compile(r"export interface (\w+)(?:\s+extends\s+([\w.,\s]+))?\s*\{")
_PROPERTY = re.compile(r"^\s*(\w+)\??\s*:", re.M)


def _interfaces(source: str) -> dict[str, tuple[list[str], list[str]]]:
    """Interface name -> (extended interfaces, top-level property names)."""
    text = _COMMENT.sub("", source)
    found = {}
    for match in _INTERFACE.finditer(text):
        depth, start, i = 1, match.end(), match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body, top, level = text[start:i - 1], [], 0
        for line in body.splitlines():
            if level == 0:
                prop = _PROPERTY.match(line)
                if prop:
                    top.append(prop.group(1))
            level += line.count("{") - line.count("}")
        parents = [p.strip().rsplit(".", 1)[-1] for p in (match.group(2) or "").split(",")
                   if p.strip()]
        found[match.group(1)] = (parents, top)
    return found


def distill(packages: list[Path]) -> dict[str, Any]:
    """The allow-list from unpacked ``@grafana/schema`` packages (newest first)."""
    common: dict[str, tuple[list[str], list[str]]] = {}
    versions = []
    for package in packages:
        versions.append(json.loads((package / "package.json").read_text())["version"])
        common_path = package / "dist/types/common/common.gen.d.ts"
        if common_path.exists():
            common = {**_interfaces(common_path.read_text()), **common}
    kinds: dict[str, list[str]] = {}
    for kind, relative, interface in _SOURCES:
        path = next((p / "dist" / relative for p in packages if (p / "dist" / relative).exists()),
                    None)
        if path is None:
            raise FileNotFoundError(f"{relative} is in none of {packages}")
        local = _interfaces(path.read_text())
        known = {**common, **local}

        def keys(name: str, known: dict[str, tuple[list[str], list[str]]] = known) -> set[str]:
            parents, props = known[name]
            return set(props).union(*(keys(p) for p in parents))

        kinds[kind] = sorted(keys(interface))
    return {
        "source": "@grafana/schema " + ", ".join(versions),
        "nullable": list(NULLABLE),
        "kinds": kinds,
    }


def allowed() -> dict[str, Any]:
    from modelmon.dashboards import grafana_schema

    return {"source": grafana_schema.SOURCE, "nullable": grafana_schema.NULLABLE,
            "kinds": grafana_schema.KINDS}


def render_module(distilled: dict[str, Any]) -> str:
    """``distilled`` as the Python module ``grafana_schema``."""
    kinds = ",\n".join(
        f"    {kind!r}: frozenset({{\n" + "".join(f"        {k!r},\n" for k in keys) + "    })"
        for kind, keys in sorted(distilled["kinds"].items())
    )
    return (
        '"""Property names the Grafana dashboard schema allows, per object kind.\n\n'
        f"Generated from {distilled['source']} by ``python -m\n"
        "modelmon.dashboards.schema_keys`` (see that module); do not edit by hand.\n"
        '"""\n\n'
        f"SOURCE = {distilled['source']!r}\n"
        f"NULLABLE = frozenset({sorted(distilled['nullable'])!r})\n"
        f"KINDS: dict[str, frozenset[str]] = {{\n{kinds},\n}}\n"
    )


def problems(dashboard: dict[str, Any]) -> list[str]:
    """Every property of ``dashboard`` the schema does not describe, and every null."""
    schema = allowed()
    kinds: dict[str, frozenset[str]] = schema["kinds"]
    nullable = set(schema["nullable"])
    found: list[str] = []

    def check(obj: Any, kind: str, path: str) -> None:
        if not isinstance(obj, dict):
            found.append(f"{path}: expected an object ({kind})")
            return
        unknown = sorted(set(obj) - set(kinds[kind]))
        if unknown:
            found.append(f"{path}: {', '.join(unknown)} not in {kind}")
        for key, value in obj.items():
            if value is None and f"{kind}.{key}" not in nullable:
                found.append(f"{path}.{key}: null")

    def each(items: Any, kind: str, path: str) -> None:
        for i, item in enumerate(items or []):
            check(item, kind, f"{path}[{i}]")

    check(dashboard, "Dashboard", "dashboard")
    for name in ("time", "templating"):
        if dashboard.get(name) is None:
            found.append(f"dashboard.{name}: missing")
    if isinstance(dashboard.get("time"), dict) and set(dashboard["time"]) != {"from", "to"}:
        found.append("dashboard.time: exactly from and to")
    templating = dashboard.get("templating") or {}
    if set(templating) - {"list"}:
        found.append("dashboard.templating: only list")
    for i, variable in enumerate(templating.get("list", [])):
        path = f"dashboard.templating.list[{i}]"
        check(variable, "VariableModel", path)
        if variable.get("current"):
            check(variable["current"], "VariableOption", f"{path}.current")
        each(variable.get("options"), "VariableOption", f"{path}.options")
        if "datasource" in variable:
            check(variable["datasource"], "DataSourceRef", f"{path}.datasource")
    annotations = dashboard.get("annotations")
    if annotations is not None:
        check(annotations, "AnnotationContainer", "dashboard.annotations")
        each(annotations.get("list"), "AnnotationQuery", "dashboard.annotations.list")
    if "timepicker" in dashboard:
        check(dashboard["timepicker"], "TimePickerConfig", "dashboard.timepicker")
    each(dashboard.get("links"), "DashboardLink", "dashboard.links")
    for i, panel in enumerate(dashboard.get("panels", [])):
        _check_panel(panel, f"dashboard.panels[{i}]", check, each)
    return found


def _check_panel(panel: dict[str, Any], path: str, check: Any, each: Any) -> None:
    kind = panel.get("type")
    check(panel, "RowPanel" if kind == "row" else "Panel", path)
    if "gridPos" in panel:
        check(panel["gridPos"], "GridPos", f"{path}.gridPos")
    if "datasource" in panel:
        check(panel["datasource"], "DataSourceRef", f"{path}.datasource")
    if kind == "row":
        for j, child in enumerate(panel.get("panels", [])):
            _check_panel(child, f"{path}.panels[{j}]", check, each)
        return
    source = (panel.get("datasource") or {}).get("type", "prometheus")
    each(panel.get("targets"), f"{source}.DataQuery", f"{path}.targets")
    for j, target in enumerate(panel.get("targets") or []):
        if "datasource" in target:
            check(target["datasource"], "DataSourceRef", f"{path}.targets[{j}].datasource")
    each(panel.get("transformations"), "DataTransformerConfig", f"{path}.transformations")
    each(panel.get("links"), "DashboardLink", f"{path}.links")
    options = panel.get("options")
    if options is not None:
        check(options, f"{kind}.Options", f"{path}.options")
        if kind == "timeseries":
            check(options.get("legend", {}), "timeseries.Legend", f"{path}.options.legend")
            check(options.get("tooltip", {}), "common.VizTooltipOptions",
                  f"{path}.options.tooltip")
        each(options.get("sortBy"), "common.TableSortByFieldState", f"{path}.options.sortBy")
    config = panel.get("fieldConfig")
    if config is None:
        return
    check(config, "FieldConfigSource", f"{path}.fieldConfig")
    defaults = config.get("defaults", {})
    check(defaults, "FieldConfig", f"{path}.fieldConfig.defaults")
    if "color" in defaults:
        check(defaults["color"], "FieldColor", f"{path}.fieldConfig.defaults.color")
    if "thresholds" in defaults:
        check(defaults["thresholds"], "ThresholdsConfig", f"{path}.fieldConfig.defaults.thresholds")
        each(defaults["thresholds"].get("steps"), "Threshold",
             f"{path}.fieldConfig.defaults.thresholds.steps")
    custom = defaults.get("custom")
    if custom is not None:
        check(custom, f"{kind}.FieldConfig", f"{path}.fieldConfig.defaults.custom")
        for key, sub in (("hideFrom", "HideSeriesConfig"),
                         ("scaleDistribution", "ScaleDistributionConfig"),
                         ("stacking", "StackingConfig"),
                         ("thresholdsStyle", "GraphThresholdsStyleConfig")):
            if key in custom:
                check(custom[key], f"common.{sub}", f"{path}.fieldConfig.defaults.custom.{key}")


if __name__ == "__main__":
    sys.stdout.write(render_module(distill([Path(p) for p in sys.argv[1:]])))
