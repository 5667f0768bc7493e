"""Shared building blocks of the grafanalib dashboards.

Every dashboard gets the same skeleton: a stable ``uid``, a datasource
template variable (so the JSON works both for UI import and for file
provisioning, unlike ``__inputs``), model / version / device variables,
TimeSeries panels that always carry a unit and a description, and an
explicit ``schemaVersion``. Panels are laid out on Grafana's 24-column grid
in the order they are listed.

``catalog_panels()`` is what makes a dashboard follow the catalog: every KPI
of the dashboard's groups that no hand-written panel shows gets a generated
panel, so a new KPI is on a dashboard the moment it is in the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from grafanalib.core import Dashboard, GridPos, RowPanel, Target, Templating, TimeSeries
from grafanalib.core import Time as GrafanaTime

from modelmon.alerting.promql import kpi_of, metric_names
from modelmon.catalog import CATALOG
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


def selector(
    kpi_name: str, prefix: str, suffix: str = "", catalog: Sequence[KPI] = CATALOG, **matchers: str
) -> str:
    """``prefix+name+suffix{...}`` filtered by the dashboard variables that apply.

    ``device`` filters every series: the edge agent labels everything it
    forwards with it, and ``.*`` (All) also matches series without it.
    """
    kpi = next((k for k in catalog if k.name == kpi_name), None)
    if kpi is None:
        raise KeyError(f"dashboard references {kpi_name!r}, which is not in the KPI catalog")
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
) -> TimeSeries:
    """A TimeSeries panel; ``targets`` are (PromQL, legend format) pairs."""
    if not description or not unit:
        raise ValueError(f"panel {title!r}: every panel needs a unit and a description")
    steps = [{"color": "green", "value": None}] + [
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


def row(title: str) -> RowPanel:
    return RowPanel(title=title, gridPos=GridPos(h=1, w=24, x=0, y=0))


def _legend(kpi: KPI) -> str:
    shown = [label for label in kpi.labels if label != "le"]
    return " ".join("{{" + label + "}}" for label in shown) or kpi.name


def generated_panel(kpi: KPI, prefix: str) -> TimeSeries:
    """The default view of a KPI no hand-written panel covers."""
    labels = ", ".join(kpi.labels)
    by = f" by ({labels})" if labels else ""
    # The catalog's panel is "<dashboard uid>: <panel title>".
    title = (kpi.panel.split(": ", 1)[-1] if kpi.panel
             else kpi.name.removesuffix("_total").replace("_", " ").capitalize())
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


def referenced_kpis(panels: Iterable[Any], prefix: str) -> set[str]:
    """Names of the catalog KPIs that the PromQL of ``panels`` selects."""
    found = set()
    for panel in panels:
        for target in getattr(panel, "targets", []):
            for metric in metric_names(getattr(target, "expr", "")):
                kpi = kpi_of(metric, prefix)
                if kpi is not None:
                    found.add(kpi.name)
    return found


def catalog_panels(
    groups: Sequence[str], prefix: str, shown: Iterable[Any], catalog: Sequence[KPI] = CATALOG
) -> list[Any]:
    """A row of generated panels for the KPIs of ``groups`` that ``shown`` lacks."""
    covered = referenced_kpis(shown, prefix)
    missing = [k for k in catalog if k.group in groups and k.name not in covered]
    if not missing:
        return []
    return [row("More KPIs (generated from the catalog)")] + [
        generated_panel(k, prefix) for k in missing
    ]


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


def custom_variable(name: str, label: str, values: Sequence[str]) -> dict[str, Any]:
    options = [{"selected": i == 0, "text": v, "value": v} for i, v in enumerate(values)]
    return {
        "name": name, "label": label, "type": "custom", "query": ",".join(values),
        "current": {"selected": True, "text": values[0], "value": values[0]},
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
    panels: Sequence[Any],
    variables: Sequence[dict[str, Any]],
) -> Dashboard:
    return Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["modelmon", *tags],
        panels=layout(panels),
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
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
