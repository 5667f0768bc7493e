"""Which dashboard panels and which alerts show each catalog KPI.

Derived from the generated artifacts themselves (the PromQL of every panel
target and rule, recording rules followed to the metrics they read), so it
cannot disagree with them. It feeds the lint test and can fill the catalog's
``panel`` / ``alerts`` fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from modelmon.alerting import RulesConfig, rule_groups
from modelmon.alerting.promql import kpi_of, metric_names
from modelmon.catalog import CATALOG
from modelmon.dashboards import render_all


@dataclass
class KPIReferences:
    panels: list[str] = field(default_factory=list)  # "Dashboard title / Panel title"
    alerts: list[str] = field(default_factory=list)
    # The catalog's form of the first panel: "<dashboard uid>: <panel title>".
    panel_ref: str | None = None


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard JSON, rows' nested panels included, rows excluded."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def prometheus_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus target of a dashboard JSON."""
    for panel in panels(dashboard):
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


def kpi_references(config: RulesConfig | None = None) -> dict[str, KPIReferences]:
    """KPI name -> the panels and alerts that reference it, for every catalog KPI."""
    config = config or RulesConfig()
    refs = {k.name: KPIReferences() for k in CATALOG}
    for text in render_all(config.prefix).values():
        dash = json.loads(text)
        for panel_title, expr in prometheus_targets(dash):
            for metric in metric_names(expr):
                kpi = kpi_of(metric, config.prefix)
                label = f"{dash['title']} / {panel_title}"
                if kpi is not None and label not in refs[kpi.name].panels:
                    refs[kpi.name].panels.append(label)
                    if refs[kpi.name].panel_ref is None:
                        refs[kpi.name].panel_ref = f"{dash['uid']}: {panel_title}"
    groups = rule_groups(config)
    for name, metrics in rule_metrics(groups).items():
        if ":" in name:  # a recording rule, not an alert
            continue
        for metric in metrics:
            kpi = kpi_of(metric, config.prefix)
            if kpi is not None and name not in refs[kpi.name].alerts:
                refs[kpi.name].alerts.append(name)
    return refs


def catalog_fields(config: RulesConfig | None = None) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """KPI name -> what its catalog entry's ``panel`` and ``alerts`` must say.

    The catalog declares where each KPI is shown and which alerts watch it;
    a lint test compares that declaration with this derivation from the
    generated dashboards and rules, so the two cannot drift apart.
    """
    return {
        name: (refs.panel_ref, tuple(sorted(refs.alerts)))
        for name, refs in kpi_references(config).items()
    }
