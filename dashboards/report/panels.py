"""The report's panels: the Grafana dashboards' own panels, read from the
dashboard JSON that ``modelmon dashboards build`` writes, with Grafana's
variables put in place the way Grafana itself would.

Nothing here lists a query: a panel, its PromQL, legend, unit and threshold
lines all come from the dashboard modules (and so from the KPI catalog and the
thresholds config), so the report and the dashboards cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelmon.dashboards import render_all
from modelmon.dashboards.references import json_panels
from modelmon.thresholds import ThresholdsConfig

ALL = ".*"  # what Grafana's "All" puts in a regex matcher (allValue of the variables)


@dataclass(frozen=True)
class Target:
    expr: str  # PromQL with the Grafana variables still in it
    legend: str  # Grafana legend format: "{{model}} {{version}}"


@dataclass(frozen=True)
class Panel:
    dashboard: str  # dashboard title
    row: str
    title: str
    description: str
    unit: str
    width: int  # Grafana grid columns, of 24
    stacked: bool
    thresholds: tuple[tuple[float, str], ...]  # (value, colour) lines
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    defaults: dict[str, str]  # variable -> value of the dashboard's custom variables


def dashboards(config: ThresholdsConfig | None = None) -> list[Dashboard]:
    """The dashboards with Prometheus panels, in ``modelmon.dashboards.DASHBOARDS`` order.

    Panels on other data sources (the Elasticsearch logs dashboard) are left out:
    the report reads Prometheus only.
    """
    out = []
    for text in render_all(config or ThresholdsConfig()).values():
        data = json.loads(text)
        panels = tuple(_panels(data))
        if panels:
            out.append(Dashboard(data["uid"], data["title"], panels, _custom_defaults(data)))
    return out


def _panels(data: dict[str, Any]) -> Iterator[Panel]:
    for row, panel in json_panels(data):
        targets = tuple(
            Target(t["expr"], t.get("legendFormat", ""))
            for t in panel.get("targets", [])
            if ((t.get("datasource") or panel.get("datasource") or {}).get("type") == "prometheus"
                and t.get("expr") and not t.get("hide"))
        )
        if not targets:
            continue
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        steps = defaults.get("thresholds", {}).get("steps", [])
        custom = defaults.get("custom", {})
        lines = custom.get("thresholdsStyle", {}).get("mode", "off") != "off"
        yield Panel(
            dashboard=data["title"],
            row=row,
            title=panel["title"],
            description=panel.get("description", ""),
            unit=defaults.get("unit", "short"),
            width=int(panel.get("gridPos", {}).get("w", 12)),
            stacked=bool(custom.get("stacking", {}).get("mode", "none") not in ("none", None)),
            thresholds=tuple(
                (float(s["value"]), str(s["color"])) for s in steps
                if lines and s.get("value") is not None
            ),
            targets=targets,
        )


def _custom_defaults(data: dict[str, Any]) -> dict[str, str]:
    """The selected value of each single-value custom variable (``$drift_method``)."""
    out = {}
    for variable in data.get("templating", {}).get("list", []):
        if variable.get("type") == "custom":
            out[variable["name"]] = str(variable.get("current", {}).get("value", ""))
    return out


def regex_value(value: str | None) -> str:
    """A variable's value inside ``label=~"..."``: the literal value (regex- and
    string-escaped, as Grafana escapes a selected value), or All."""
    if value is None:
        return ALL
    escaped = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


def rate_interval(step: float, scrape_interval: float) -> float:
    """Grafana's ``$__rate_interval``: max(step + scrape interval, 4 x scrape interval)."""
    return max(step + scrape_interval, 4 * scrape_interval)


def resolve(text: str, variables: dict[str, str]) -> str:
    """``text`` with ``$name`` and ``${name}`` replaced from ``variables``.

    Longest names first, so ``$model`` never eats the start of ``$model_x``;
    a variable the report does not know stays, and Prometheus names it in its error.
    """
    for name in sorted(variables, key=len, reverse=True):
        text = text.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    return text


def legend(template: str, labels: dict[str, str]) -> str:
    """A series' name from a Grafana legend format; without one, its labels."""
    if not template:
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        name = labels.get("__name__", "")
        return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
    return re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}",
                  lambda m: labels.get(m.group(1), ""), template).strip() or template
