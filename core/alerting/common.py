"""Building blocks shared by the rule families: the alert record and catalog checks."""

from __future__ import annotations

from typing import Any

from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig

Severity = str  # "critical" pages, "warning" makes a ticket, "info" is for dashboards only
SEVERITIES = ("critical", "warning", "info")


def alert(
    config: ThresholdsConfig,
    name: str,
    expr: str,
    *,
    for_: str,
    severity: Severity,
    summary: str,
    description: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An alerting rule in the mixin conventions (CamelCase name, severity, runbook_url)."""
    assert severity in SEVERITIES, severity
    assert name[:1].isupper() and name.isalnum(), f"alert names are CamelCase: {name!r}"
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ != "0s":
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": config.runbook_url(name),
    }
    return rule


def record(name: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = dict(labels)
    return rule


def has(catalog: tuple[KPI, ...], name: str, labels: tuple[str, ...] = ()) -> bool:
    """Whether ``name`` is in the catalog with (at least) ``labels``.

    Rules for a KPI group are generated only for KPIs that exist: the quality,
    log and edge groups fill in independently, and a rule about a metric no
    exporter produces would never fire.
    """
    kpi = next((k for k in catalog if k.name == name), None)
    return kpi is not None and set(labels) <= set(kpi.labels)

