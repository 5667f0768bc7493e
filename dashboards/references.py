"""Which dashboard panels and which alerts read each catalog KPI.

Derived from the generated artifacts themselves (the PromQL of every panel
target and rule, recording rules followed to the metrics they read), so it
cannot disagree with them; the catalog stores none of it. It feeds
``docs/KPIS.md`` (``modelmon kpis``) and the tests that hold the catalog, the
dashboards and the rules together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from modelmon.alerting import rule_groups
from modelmon.alerting.promql import kpi_of, metric_names
from modelmon.catalog import CATALOG
from modelmon.dashboards import render_all
from modelmon.thresholds import ThresholdsConfig

UID_PREFIX = "modelmon-"


@dataclass(frozen=True)
class PanelRef:
    """One panel of a generated dashboard."""

    dashboard: str  # the dashboard's NAME, what a KPI's ``dashboard=`` says
    dashboard_title: str
    row: str
    title: str


@dataclass
class KPIReferences:
    panels: list[PanelRef] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def json_panels(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row title, panel) of every panel of a dashboard JSON, collapsed rows included.

    A panel above the first row has the row title ``""``.
    """
    current = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            current = panel.get("title", "")
            for nested in panel.get("panels", []):
                yield current, nested
        else:
            yield current, panel


def prometheus_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus target of a dashboard JSON."""
    for _, panel in json_panels(dashboard):
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel.get("datasource") or {}
            if ds.get("type") == "prometheus" and target.get("expr"):
                yield panel["title"], target["expr"]


def rule_metrics(groups: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Rule (alert or record name) -> raw metric names it reads, through recording rules."""
    direct: dict[str, set[str]] = {}
    for group in groups:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            direct.setdefault(name, set()).update(metric_names(rule["expr"]))

    def resolve(names: set[str], seen: frozenset[str]) -> set[str]:
        out: set[str] = set()
        for n in names:
            if n in direct and n not in seen and ":" in n:
                out |= resolve(direct[n], seen | {n})
            else:
                out.add(n)
        return out

    return {name: resolve(names, frozenset({name})) for name, names in direct.items()}


def dashboard_rows(config: ThresholdsConfig | None = None) -> dict[str, list[str]]:
    """Dashboard NAME -> its row titles, in order, as generated."""
    out: dict[str, list[str]] = {}
    for text in render_all(config or ThresholdsConfig()).values():
        dash = json.loads(text)
        titles = out.setdefault(dash["uid"].removeprefix(UID_PREFIX), [])
        for panel in dash.get("panels", []):
            if panel.get("type") == "row":
                titles.append(panel["title"])
    return out


def kpi_references(config: ThresholdsConfig | None = None) -> dict[str, KPIReferences]:
    """KPI name -> the panels and alerts that read it, for every catalog KPI."""
    config = config or ThresholdsConfig()
    refs = {k.name: KPIReferences() for k in CATALOG}
    for text in render_all(config).values():
        dash = json.loads(text)
        name = dash["uid"].removeprefix(UID_PREFIX)
        for row_title, panel in json_panels(dash):
            for target in panel.get("targets", []):
                ds = target.get("datasource") or panel.get("datasource") or {}
                if ds.get("type") != "prometheus":
                    continue
                for metric in metric_names(target.get("expr", "")):
                    kpi = kpi_of(metric, config.prefix)
                    ref = PanelRef(name, dash["title"], row_title, panel["title"])
                    if kpi is not None and ref not in refs[kpi.name].panels:
                        refs[kpi.name].panels.append(ref)
    for rule, metrics in rule_metrics(rule_groups(config)).items():
        if ":" in rule:  # a recording rule, not an alert
            continue
        for metric in metrics:
            kpi = kpi_of(metric, config.prefix)
            if kpi is not None and rule not in refs[kpi.name].alerts:
                refs[kpi.name].alerts.append(rule)
    for r in refs.values():
        r.alerts.sort()
    return refs
