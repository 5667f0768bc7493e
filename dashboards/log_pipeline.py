"""Log pipeline: events delivered, dropped, dead-lettered; the spool behind the shipper."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from modelmon.catalog import CATALOG
from modelmon.dashboards.common import (
    catalog_panels,
    dashboard,
    datasource_variable,
    model_variables,
    rate,
    row,
    timeseries,
)
from modelmon.kpi import DEFAULT_PREFIX

UID = "modelmon-log-pipeline"
TITLE = "modelmon / Log pipeline"
GROUPS = ("logs",)


def _kpi_labels(name: str) -> tuple[str, ...] | None:
    kpi = next((k for k in CATALOG if k.name == name), None)
    return None if kpi is None else kpi.labels


def panels(prefix: str) -> list[Any]:
    p = prefix
    out: list[Any] = []
    events = _kpi_labels("log_events_total")
    if events is not None and {"sink", "outcome"} <= set(events):
        out.append(row("Delivery"))
        out.append(timeseries(
            "Log events by outcome",
            "Log events per second by sink and outcome: delivered, retried, dropped (lost) "
            "and dead-lettered (refused by the destination, kept for replay).",
            "ops",
            [(f"sum by (sink, outcome) ({rate('log_events_total', p)})", "{{sink}} {{outcome}}")],
            stacked=True,
        ))
        out.append(timeseries(
            "Events lost or dead-lettered",
            "Dropped and dead-lettered events per second; anything above zero fires the "
            "LogShipperDroppingEvents / LogShipperDeadLettering alerts.",
            "ops",
            [
                (f"sum by (sink) ({rate('log_events_total', p, outcome='dropped')})",
                 "{{sink}} dropped"),
                (f"sum by (sink) ({rate('log_events_total', p, outcome='dead_lettered')})",
                 "{{sink}} dead-lettered"),
            ],
        ))
    return out + catalog_panels(GROUPS, p, out)


def build(prefix: str = DEFAULT_PREFIX) -> Dashboard:
    return dashboard(
        uid=UID,
        title=TITLE,
        description="The log shipper: events delivered, retried, dropped and dead-lettered "
        "per sink, and the durable spool behind it.",
        tags=["logs", "shipper"],
        panels=panels(prefix)
        or [row("No log-shipper KPIs in this modelmon version's catalog")],
        variables=[datasource_variable(), *model_variables(prefix)],
    )
