"""Log pipeline: events delivered, dropped, dead-lettered; the spool behind the shipper."""

from __future__ import annotations

from grafanalib.core import Dashboard

from modelmon.catalog import CATALOG
from modelmon.dashboards.common import (
    Row,
    dashboard,
    datasource_variable,
    fill_from_catalog,
    model_variables,
    rate,
    timeseries,
)
from modelmon.thresholds import ThresholdsConfig

NAME = "log-pipeline"
UID = f"modelmon-{NAME}"
TITLE = "modelmon / Log pipeline"


def _kpi_labels(name: str) -> tuple[str, ...] | None:
    kpi = next((k for k in CATALOG if k.name == name), None)
    return None if kpi is None else kpi.labels


def rows(config: ThresholdsConfig) -> list[Row]:
    p = config.prefix
    delivery, spool = Row("Delivery"), Row("Spool")
    events = _kpi_labels("log_events_total")
    if events is not None and {"sink", "outcome"} <= set(events):
        delivery.panels.append(timeseries(
            "Log events by outcome",
            "Log events per second by sink and outcome: delivered, retried, dropped (lost) "
            "and dead-lettered (refused by the destination, kept for replay).",
            "ops",
            [(f"sum by (sink, outcome) ({rate('log_events_total', p)})", "{{sink}} {{outcome}}")],
            stacked=True,
        ))
        delivery.panels.append(timeseries(
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
    return [delivery, spool]


def build(config: ThresholdsConfig) -> Dashboard:
    prefix = config.prefix
    return dashboard(
        uid=UID,
        title=TITLE,
        description="The log shipper: events delivered, retried, dropped and dead-lettered "
        "per sink, and the durable spool behind it.",
        tags=["logs", "shipper"],
        rows=fill_from_catalog(NAME, rows(config), prefix),
        variables=[datasource_variable(), *model_variables(prefix)],
    )
