"""Write one report: collect the panels' data, render the page, replace the file atomically."""

from __future__ import annotations

import time
from pathlib import Path

from modelmon.dashboards.report.collect import ReportData, collect
from modelmon.thresholds import ThresholdsConfig


def write_report(
    prometheus_url: str,
    out_path: str | Path,
    since_seconds: float,
    model: str | None = None,
    device: str | None = None,
    *,
    end: float | None = None,
    alertmanager_url: str | None = None,
    config: ThresholdsConfig | None = None,
) -> ReportData:
    """Write the report of the last ``since_seconds`` (up to ``end``, default now)
    to ``out_path`` and return what it holds.

    ``model`` and ``device`` narrow every panel and the alerts as the dashboards'
    variables do. Raises ``ReportError`` when Prometheus cannot be read
    (an unreadable Alertmanager is shown in the report instead), ``ImportError``
    naming the extra when plotly is missing.
    """
    from modelmon.dashboards.report.html import plotly_js, render

    if since_seconds <= 0:
        raise ValueError(f"since_seconds must be positive, got {since_seconds!r}")
    plotly = plotly_js()  # before the queries: a missing extra fails fast
    end = time.time() if end is None else end
    data = collect(prometheus_url, end - since_seconds, end, model=model, device=device,
                   alertmanager_url=alertmanager_url, config=config)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(data, plotly), encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a report
    return data
