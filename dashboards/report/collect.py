"""Run every panel's queries over the report's range: the data of one report."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from modelmon.dashboards.report import panels as panels_
from modelmon.dashboards.report.charts import Line
from modelmon.dashboards.report.panels import Dashboard, Panel
from modelmon.dashboards.report.prometheus import (
    ActiveAlert,
    AlertPeriod,
    PrometheusClient,
    QueryError,
    ReportError,
    alertmanager_alerts,
)
from modelmon.thresholds import ThresholdsConfig

POINTS_PER_CHART = 300  # about a chart's width in pixels, as Grafana's max data points
_PARALLEL_QUERIES = 4  # kind to a Prometheus that is also serving dashboards and rules


@dataclass
class PanelData:
    panel: Panel
    queries: list[str]  # the PromQL as sent
    lines: list[Line] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class DashboardData:
    dashboard: Dashboard
    panels: list[PanelData]


@dataclass
class ReportData:
    prometheus_url: str
    start: float
    end: float
    step: float
    rate_interval: float
    model: str | None
    device: str | None
    dashboards: list[DashboardData]
    alerts: list[AlertPeriod]
    alerts_error: str | None
    active_alerts: list[ActiveAlert] | None  # None: no --alertmanager given
    active_alerts_error: str | None
    generated_at: float

    def panel_count(self) -> int:
        return sum(len(d.panels) for d in self.dashboards)

    def empty_panels(self) -> list[PanelData]:
        return [p for d in self.dashboards for p in d.panels if not p.lines]


def choose_step(seconds: float, scrape_interval: float) -> float:
    """Whole seconds, about ``POINTS_PER_CHART`` points, never finer than a scrape."""
    return float(max(1, round(max(seconds / POINTS_PER_CHART, scrape_interval))))


def collect(
    prometheus_url: str,
    start: float,
    end: float,
    *,
    model: str | None = None,
    device: str | None = None,
    alertmanager_url: str | None = None,
    config: ThresholdsConfig | None = None,
) -> ReportData:
    client = PrometheusClient(prometheus_url)
    scrape = client.scrape_interval()  # also proves Prometheus answers, before 80 queries
    step = choose_step(end - start, scrape)
    interval = panels_.rate_interval(step, scrape)
    base = {
        "__rate_interval": f"{interval:g}s",
        "model": panels_.regex_value(model),
        "version": panels_.ALL,
        "device": panels_.regex_value(device),
    }
    boards = panels_.dashboards(config)
    jobs: list[PanelData] = []
    out = []
    for board in boards:
        variables = {**board.defaults, **base}
        datas = [
            PanelData(
                panel=_titled(panel, variables),
                queries=[panels_.resolve(t.expr, variables) for t in panel.targets],
            )
            for panel in board.panels
        ]
        jobs += datas
        out.append(DashboardData(board, datas))

    def run(data: PanelData) -> None:
        for target, query in zip(data.panel.targets, data.queries, strict=True):
            try:
                series = client.query_range(query, start, end, step)
            except QueryError as exc:
                data.errors.append(f"{query}: {exc}")
                continue
            data.lines += [
                Line(panels_.legend(target.legend, s.labels), s)
                for s in series if any(v is not None for _, v in s.points)
            ]

    with ThreadPoolExecutor(_PARALLEL_QUERIES) as pool:
        list(pool.map(run, jobs))  # list(): re-raise what a worker raised

    selector = ",".join(
        f'{label}=~"{panels_.regex_value(value)}"'
        for label, value in (("model", model), ("device", device)) if value is not None
    )
    alerts: list[AlertPeriod] = []
    alerts_error = None
    try:
        alerts = client.alerts(selector, start, end, step)
    except QueryError as exc:
        alerts_error = str(exc)
    active: list[ActiveAlert] | None = None
    active_error = None
    if alertmanager_url:
        try:
            active = alertmanager_alerts(alertmanager_url)
        except ReportError as exc:  # the panels are worth writing without it
            active_error = str(exc)
    if active is not None and (model or device):
        active = [a for a in active
                  if (model is None or a.labels.get("model") == model)
                  and (device is None or a.labels.get("device") == device)]
    return ReportData(
        prometheus_url=client.url, start=start, end=end, step=step, rate_interval=interval,
        model=model, device=device, dashboards=out, alerts=alerts, alerts_error=alerts_error,
        active_alerts=active, active_alerts_error=active_error, generated_at=time.time(),
    )


def _titled(panel: Panel, variables: dict[str, str]) -> Panel:
    """Titles name variables too ("Feature drift ($drift_method)")."""
    return replace(panel, title=panels_.resolve(panel.title, variables))
