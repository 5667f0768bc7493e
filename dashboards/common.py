"""Shared building blocks of the grafanalib dashboards.

Every dashboard gets the same skeleton: a stable ``uid``, a datasource
template variable (so the JSON works both for UI import and for file
provisioning, unlike ``__inputs``), model / version / device variables,
TimeSeries panels that always carry a unit and a description, and an
explicit ``schemaVersion``. Panels are laid out on Grafana's 24-column grid
in the order they are listed.

A dashboard module writes its panels as ``Row`` s. ``fill_from_catalog()`` is
what makes it follow the catalog: every KPI that names the dashboard and that
no hand-written panel of it shows gets a generated panel in the row the KPI
names, so a new KPI is on its dashboard the moment it is in the catalog.
Threshold lines come from the thresholds config (``modelmon.thresholds``),
the same numbers the alerts compare against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafanalib.core import Dashboard, GridPos, RowPanel, Target, Templating, TimeSeries
from grafanalib.core import Time as GrafanaTime

from modelmon.alerting.promql import kpi_of, metric_names
from modelmon.catalog import CATALOG, by_name
from modelmon.kpi import KPI

# Grafana 10.4 / 11 write schemaVersion 39; older Grafana refuses nothing
# here, newer Grafana migrates forward.
SCHEMA_VERSION = 39
PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
PANEL_WIDTH, PANEL_HEIGHT = 12, 8
# Grafana variables in queries and what to put in their place to run a
# query outside Grafana (the PromQL tests do).
ALL = ".*"

# Units of the catalog -> Grafana units, for values and for per-second rates.
_VALUE_UNITS = {"seconds": "s", "bytes": "bytes", "ratio": "percentunit", "bool": "bool",
                "celsius": "celsius", "info": "short"}
_RATE_UNITS = {"requests": "reqps", "bytes": "Bps", "seconds": "s"}


def selector(kpi_name: str, prefix: str, suffix: str = "", **matchers: str) -> str:
    """``prefix+name+suffix{...}`` filtered by the dashboard variables that apply.

    ``device`` filters every series: the edge agent labels everything it
    forwards with it, and ``.*`` (All) also matches series without it.
    """
    try:
        kpi = by_name(kpi_name)
    except KeyError:
        raise KeyError(f"dashboard references {kpi_name!r}, which is not in the KPI catalog") from None
    parts = [f'{label}=~"${label}"' for label in ("model", "version") if label in kpi.labels]
    parts.append('device=~"$device"')
    parts += [f'{k}="{v}"' for k, v in matchers.items()]
    return f"{kpi.full_name(prefix)}{suffix}{{{','.join(parts)}}}"


def rate(kpi_name: str, prefix: str, suffix: str = "", **matchers: str) -> str:
    return f"rate({selector(kpi_name, prefix, suffix, **matchers)}[$__rate_interval])"


def quantile(q: float, kpi_name: str, prefix: str, by: str = "model, version") -> str:
    return (
        f"histogram_quantile({q:g}, sum by (le, {by}) "
        f"({rate(kpi_name, prefix, '_bucket')}))"
    )


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[tuple[str, str]],
    *,
    width: int = PANEL_WIDTH,
    stacked: bool = False,
    thresholds: Sequence[tuple[float, str]] = (),
    base_color: str = "green",
) -> TimeSeries:
    """A TimeSeries panel; ``targets`` are (PromQL, legend format) pairs.

    ``thresholds`` are (value, colour) steps drawn as lines, ascending; below
    the first the colour is ``base_color`` (``"red"`` where low is bad).
    """
    if not description or not unit:
        raise ValueError(f"panel {title!r}: every panel needs a unit and a description")
    steps = [{"color": base_color, "value": None}] + [
        {"color": color, "value": value} for value, color in thresholds
    ]
    return TimeSeries(
        title=title,
        description=description,
        dataSource=PROMETHEUS,
        targets=[
            Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=PROMETHEUS)
            for i, (expr, legend) in enumerate(targets)
        ],
        unit=unit,
        gridPos=GridPos(h=PANEL_HEIGHT, w=width, x=0, y=0),
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        fillOpacity=20 if stacked else 0,
        thresholds=steps,
        thresholdsStyleMode="line" if thresholds else "off",
        tooltipMode="multi",
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
    )


def _row_panel(title: str) -> RowPanel:
    return RowPanel(title=title, gridPos=GridPos(h=1, w=24, x=0, y=0))


@dataclass
class Row:
    """A titled row of a dashboard and the panels under it."""

    title: str
    panels: list[Any] = field(default_factory=list)


def in_catalog(*names: str, catalog: Sequence[KPI] = CATALOG) -> bool:
    """Whether every KPI of ``names`` is in the catalog (a group may land later)."""
    present = {k.name for k in catalog}
    return all(n in present for n in names)


def _legend(kpi: KPI) -> str:
    shown = [label for label in kpi.labels if label != "le"]
    return " ".join("{{" + label + "}}" for label in shown) or kpi.name


def generated_panel(kpi: KPI, prefix: str) -> TimeSeries:
    """The default view of a KPI no hand-written panel covers."""
    labels = ", ".join(kpi.labels)
    by = f" by ({labels})" if labels else ""
    # The unit is on the axis: "Feedback label delay", not "... delay seconds".
    words = kpi.name.removesuffix("_total").removesuffix("_seconds").removesuffix("_celsius")
    title = words.replace("_", " ").capitalize()
    description = f"{kpi.help} {kpi.meaning} (`{kpi.full_name(prefix)}`)"
    if kpi.type == "counter":
        expr = f"sum{by} ({rate(kpi.name, prefix)})"
        unit = _RATE_UNITS.get(kpi.unit, "cps")
        title += " per second" if not title.endswith("per second") else ""
        return timeseries(title, description, unit, [(expr, _legend(kpi))])
    if kpi.type == "histogram":
        by_labels = ", ".join(("le", *kpi.labels))
        unit = _VALUE_UNITS.get(kpi.unit, "short")
        targets = [
            (
                f"histogram_quantile({q}, sum by ({by_labels}) ({rate(kpi.name, prefix, '_bucket')}))",
                f"p{int(float(q) * 100)} {_legend(kpi)}",
            )
            for q in ("0.5", "0.95")
        ]
        return timeseries(title, description, unit, targets)
    unit = _VALUE_UNITS.get(kpi.unit, "short")
    return timeseries(title, description, unit, [(f"max{by} ({selector(kpi.name, prefix)})", _legend(kpi))])


def referenced_kpis(
    panels: Iterable[Any], prefix: str, catalog: Sequence[KPI] = CATALOG
) -> set[str]:
    """Names of the catalog KPIs that the PromQL of ``panels`` selects."""
    found = set()
    for panel in panels:
        for target in getattr(panel, "targets", []):
            for metric in metric_names(getattr(target, "expr", "")):
                kpi = kpi_of(metric, prefix, tuple(catalog))
                if kpi is not None:
                    found.add(kpi.name)
    return found


def fill_from_catalog(
    dashboard_name: str, rows: Sequence[Row], prefix: str, catalog: Sequence[KPI] = CATALOG
) -> list[Row]:
    """``rows`` plus a generated panel, in the row it names, for every KPI that
    names ``dashboard_name`` and that no panel of ``rows`` shows."""
    covered = referenced_kpis((p for r in rows for p in r.panels), prefix, catalog)
    filled = [Row(r.title, list(r.panels)) for r in rows]
    by_title = {r.title: r for r in filled}
    for kpi in catalog:
        if kpi.dashboard != dashboard_name or kpi.name in covered:
            continue
        if kpi.row not in by_title:
            raise ValueError(
                f"KPI {kpi.name!r} names row {kpi.row!r} of dashboard {dashboard_name!r}, "
                f"which has the rows {', '.join(repr(t) for t in by_title)}; fix its row= in "
                "modelmon.catalog or add the row to the dashboard module"
            )
        by_title[kpi.row].panels.append(generated_panel(kpi, prefix))
    return filled


def flatten(rows: Sequence[Row]) -> list[Any]:
    """Grafana's flat panel list: each row header followed by its panels; empty rows go."""
    return [p for r in rows if r.panels for p in (_row_panel(r.title), *r.panels)]


def layout(panels: Sequence[Any]) -> list[Any]:
    """Place panels left to right, top to bottom; a row starts a new line."""
    x = y = line_height = 0
    placed = []
    for panel in panels:
        pos = panel.gridPos
        w, h = pos.w, pos.h
        if isinstance(panel, RowPanel) or x + w > 24:
            x, y = 0, y + line_height
            line_height = 0
        pos = GridPos(h=h, w=w, x=x, y=y)
        placed.append(_with_grid(panel, pos))
        if isinstance(panel, RowPanel):
            y += h
        else:
            x += w
            line_height = max(line_height, h)
    return placed


def _with_grid(panel: Any, pos: GridPos) -> Any:
    import attr

    return attr.evolve(panel, gridPos=pos)


def datasource_variable(kind: str = "prometheus", label: str = "Data source") -> dict[str, Any]:
    return {
        "name": "datasource", "label": label, "type": "datasource", "query": kind,
        "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [],
        "refresh": 1, "regex": "", "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-value Prometheus ``label_values`` variable that defaults to All."""
    return {
        "name": name, "label": label, "type": "query",
        "datasource": PROMETHEUS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "includeAll": True, "allValue": ALL, "multi": True,
        "hide": 0, "options": [], "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False,
    }


def custom_variable(
    name: str, label: str, values: Sequence[str], current: str | None = None
) -> dict[str, Any]:
    """A single-value variable offering ``values``; ``current`` (default the first) is selected."""
    current = values[0] if current is None else current
    if current not in values:
        raise ValueError(f"variable {name!r}: {current!r} is not one of {list(values)}")
    options = [{"selected": v == current, "text": v, "value": v} for v in values]
    return {
        "name": name, "label": label, "type": "custom", "query": ",".join(values),
        "current": {"selected": True, "text": current, "value": current},
        "options": options, "includeAll": False, "multi": False, "hide": 0, "skipUrlSync": False,
    }


def model_variables(prefix: str) -> list[dict[str, Any]]:
    """device, model and version, each narrowed by the ones before it."""
    info = f"{prefix}model_info"
    return [
        query_variable("device", "Device", f"label_values({info}, device)"),
        query_variable("model", "Model", f'label_values({info}{{device=~"$device"}}, model)'),
        query_variable(
            "version", "Version",
            f'label_values({info}{{device=~"$device",model=~"$model"}}, version)',
        ),
    ]


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    rows: Sequence[Row],
    variables: Sequence[dict[str, Any]],
) -> Dashboard:
    return Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["modelmon", *tags],
        panels=layout(flatten(rows)),
        templating=Templating(list=list(variables)),
        schemaVersion=SCHEMA_VERSION,
        time=GrafanaTime("now-6h", "now"),
        refresh="30s",
        graphTooltip=1,  # shared crosshair: compare panels at one instant
        timezone="browser",
    ).auto_panel_ids()


def to_json(dash: Dashboard) -> str:
    """The dashboard as Grafana JSON, stable across runs (sorted keys)."""
    from grafanalib._gen import DashboardEncoder

    data = json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder))
    # Provisioned and imported dashboards must not carry an id or __inputs.
    data.pop("id", None)
    data.pop("__inputs", None)
    return json.dumps(conform(data), indent=2, sort_keys=True) + "\n"


# What grafanalib still writes that the current dashboard schema
# (@grafana/schema, schemaVersion 39+) no longer describes: the pre-5.0 row
# layout (rows, span, height), settings that moved (sharedCrosshair became
# graphTooltip, hideControls and style are gone) and the old table panel's
# own properties. grafanalib cannot be told to omit them, so they go here, in
# the one place every dashboard passes through; tests/unit/dashboards checks
# the result against the schema's allow-list (modelmon.dashboards.grafana_schema).
_LEGACY_DASHBOARD = ("rows", "hideControls", "sharedCrosshair", "style")
_LEGACY_PANEL = ("editable", "error", "height", "minSpan", "span", "color", "columns", "fontSize")
_ROW_PANEL = ("collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title", "type")
# A Prometheus target's query is ``expr``; ``query``, ``target`` and ``metric``
# are grafanalib's copies for other data sources, ``step`` the pre-7 interval.
_LEGACY_PROMETHEUS_TARGET = ("query", "target", "metric", "step")


def conform(data: dict[str, Any]) -> dict[str, Any]:
    """Grafana JSON with only what the current dashboard schema describes, no nulls."""
    for key in _LEGACY_DASHBOARD:
        data.pop(key, None)
    data.get("timepicker", {}).pop("time_options", None)  # became quick_ranges
    for variable in data.get("templating", {}).get("list", []):
        variable.pop("definition", None)  # the query itself is in ``query``
        if not variable.get("current"):
            variable.pop("current", None)
    data["panels"] = [_conform_panel(p) for p in data.get("panels", [])]
    result: dict[str, Any] = _without_nulls(data)
    return result


def _conform_panel(panel: dict[str, Any]) -> dict[str, Any]:
    if panel.get("type") == "row":
        row = {k: v for k, v in panel.items() if k in _ROW_PANEL}
        row["panels"] = [_conform_panel(p) for p in row.get("panels", [])]
        return row
    for key in _LEGACY_PANEL:
        panel.pop(key, None)
    mappings = panel.pop("mappings", None)
    if mappings:  # the old table panel's mappings live in the field config now
        panel.setdefault("fieldConfig", {}).setdefault("defaults", {})["mappings"] = mappings
    if (panel.get("datasource") or {}).get("type") == "prometheus":
        for target in panel.get("targets", []):
            for key in _LEGACY_PROMETHEUS_TARGET:
                target.pop(key, None)
            if not target.get("interval"):
                target.pop("interval", None)
    return panel


def _without_nulls(value: Any) -> Any:
    """``value`` without null properties, except a threshold step's (null is its -Infinity)."""
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if not isinstance(value, dict):
        return value
    is_step = set(value) == {"color", "value"}
    return {k: _without_nulls(v) for k, v in value.items() if v is not None or is_step}
