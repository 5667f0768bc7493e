"""The report as one self-contained HTML page: plotly.js inlined, the figures
as JSON beside it, no request to any network when it is opened."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from modelmon.dashboards.report.charts import MAX_SERIES_PER_PANEL, alert_timeline, figure
from modelmon.dashboards.report.collect import PanelData, ReportData

PLOTLY_MISSING = (
    "modelmon report draws its charts with plotly, which is not installed: "
    "pip install 'modelmon[report]' (or pip install plotly)"
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
header{background:#1f2937;color:#f9fafb;padding:16px 24px}
header h1{margin:0 0 6px;font-size:22px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0;font-size:13px}
header dt{color:#9ca3af}header dd{margin:0}
nav{padding:8px 24px;background:#e5e7eb;font-size:13px}nav a{margin-right:14px}
main{padding:8px 24px 40px}
h2{margin:28px 0 6px;font-size:19px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{margin:18px 0 6px;font-size:15px;color:#374151}
.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:10px}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:4px;padding:8px;min-width:0}
.panel h4{margin:0 0 2px;font-size:13px}
.panel .desc{margin:0 0 4px;font-size:11px;color:#57606a}
.chart{min-height:300px}
.nodata{height:120px;display:flex;align-items:center;justify-content:center;color:#8c959f;
  background:#f6f8fa;font-size:13px}
.error{color:#cf222e;font-size:11px;white-space:pre-wrap}
.more{font-size:11px;color:#57606a}
details{font-size:11px;color:#57606a}details pre{white-space:pre-wrap;margin:4px 0}
table{border-collapse:collapse;font-size:12px;background:#fff;width:100%}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.firing{color:#cf222e;font-weight:600}.pending{color:#bc4c00}
"""

# A chart is drawn when it nears the viewport (plotly draws ~10 charts a second on
# a slow machine, and a report has ~90), the rest one by one after the page has
# loaded, so the first screen shows at once and a saved or printed page has them all.
_RENDER = """
const figures = new Map(Object.entries(
  JSON.parse(document.getElementById('modelmon-figures').textContent)));
function draw(id) {
  const fig = figures.get(id);
  if (!fig) return;
  figures.delete(id);
  Plotly.newPlot(id, fig.data, fig.layout, {displaylogo: false, responsive: true});
}
const near = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting) { near.unobserve(entry.target); draw(entry.target.id); }
  }
}, {rootMargin: '600px'});
for (const id of figures.keys()) near.observe(document.getElementById(id));
function drawNext() {
  const next = figures.keys().next();
  if (!next.done) { draw(next.value); setTimeout(drawNext, 0); }
}
window.addEventListener('load', () => setTimeout(drawNext, 0));
"""


def plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError(PLOTLY_MISSING) from None
    text: str = get_plotlyjs()
    return text


def utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
             (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return " ".join(f"{n}{u}" for n, u in parts if n) or "0s"


def render(report: ReportData, plotly: str | None = None) -> str:
    """The page; ``plotly`` is the plotly.js source (default: the installed package's)."""
    plotly = plotly_js() if plotly is None else plotly
    figures: dict[str, Any] = {}
    body: list[str] = []
    body.append(_alerts_section(report, figures))
    for board_index, board in enumerate(report.dashboards):
        body.append(f'<h2 id="d{board_index}">{escape(board.dashboard.title)}</h2>')
        row = None
        for panel_index, data in enumerate(board.panels):
            if data.panel.row != row:
                if row is not None:
                    body.append("</div>")
                row = data.panel.row
                body.append(f"<h3>{escape(row)}</h3><div class=\"grid\">")
            body.append(_panel(data, f"p{board_index}-{panel_index}", report, figures))
        if row is not None:
            body.append("</div>")
    nav = "".join(
        f'<a href="#d{i}">{escape(b.dashboard.title)}</a>' for i, b in enumerate(report.dashboards)
    )
    with_data = report.panel_count() - len(report.empty_panels())
    filters = ", ".join(f"{k} = {v}" for k, v in (("model", report.model),
                                                  ("device", report.device)) if v) or "none (all)"
    header = f"""<header><h1>modelmon report</h1><dl>
<dt>Period</dt><dd>{utc(report.start)} to {utc(report.end)} ({_duration(report.end - report.start)})</dd>
<dt>Prometheus</dt><dd>{escape(report.prometheus_url)}</dd>
<dt>Filters</dt><dd>{escape(filters)}</dd>
<dt>Panels</dt><dd>{with_data} of {report.panel_count()} with data; step {report.step:g}s, rate interval {report.rate_interval:g}s</dd>
<dt>Alerts</dt><dd>{_alert_summary(report)}</dd>
<dt>Written</dt><dd>{utc(report.generated_at)}</dd></dl></header>
<nav><a href="#alerts">Alerts</a>{nav}</nav>"""
    # No "<" in the script element at all: neither "</script" nor "<!--" can then
    # change where it ends; JSON.parse reads \u003c back as "<".
    figures_json = (json.dumps(figures, separators=(",", ":"), allow_nan=False)
                    .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>modelmon report {escape(utc(report.end))}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{_CSS}</style></head><body>{header}<main>{''.join(body)}</main>"
        f"<script>{plotly}</script>"
        f"<script type=\"application/json\" id=\"modelmon-figures\">{figures_json}</script>"
        f"<script>{_RENDER}</script></body></html>\n"
    )


def _alert_summary(report: ReportData) -> str:
    firing = [a for a in report.alerts if a.state == "firing"]
    text = f"{len({a.name for a in firing})} alert names fired ({len(firing)} periods)"
    if any(a.ongoing for a in firing):
        text += f", {sum(a.ongoing for a in firing)} still firing at the end"
    return escape(text)


def _panel(data: PanelData, div_id: str, report: ReportData, figures: dict[str, Any]) -> str:
    panel = data.panel
    # 24 columns as in Grafana; a half-width panel is 12.
    parts = [f'<section class="panel" style="grid-column:span {min(24, max(6, panel.width))}">',
             f"<h4>{escape(panel.title)}</h4>",
             f'<p class="desc">{escape(panel.description)}</p>']
    if data.lines:
        figures[div_id] = figure(panel, data.lines, report.start, report.end, report.step)
        parts.append(f'<div id="{div_id}" class="chart"></div>')
        hidden = len(data.lines) - MAX_SERIES_PER_PANEL
        if hidden > 0:
            parts.append(f'<p class="more">{hidden} more series not drawn.</p>')
    else:
        parts.append('<div class="nodata">No data</div>')
    for error in data.errors:
        parts.append(f'<p class="error">{escape(error)}</p>')
    queries = "\n\n".join(data.queries)
    parts.append(f"<details><summary>PromQL</summary><pre>{escape(queries)}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def _labels(labels: dict[str, str]) -> str:
    return escape(", ".join(f"{k}={v}" for k, v in sorted(labels.items())))


def _alerts_section(report: ReportData, figures: dict[str, Any]) -> str:
    out = ['<h2 id="alerts">Alerts of the period</h2>']
    if report.alerts_error:
        out.append(f'<p class="error">ALERTS query failed: {escape(report.alerts_error)}</p>')
    if report.alerts:
        figures["alerts-timeline"] = alert_timeline(
            report.alerts, report.start, report.end, report.step)
        height = figures["alerts-timeline"]["layout"]["height"]
        out.append('<p class="desc">Red: firing; orange: pending (its <code>for:</code> not yet '
                   'reached).</p><div class="panel"><div id="alerts-timeline" class="chart" '
                   f'style="min-height:{height}px"></div></div>')
        out.append("<table><tr><th>Alert</th><th>State</th><th>Severity</th><th>From</th>"
                   "<th>To</th><th>For</th><th>Labels</th></tr>")
        for a in report.alerts:
            to = "still active" if a.ongoing else utc(a.end)
            out.append(
                f"<tr><td>{escape(a.name)}</td><td class=\"{escape(a.state)}\">{escape(a.state)}"
                f"</td><td>{escape(a.severity)}</td><td>{utc(a.start)}</td><td>{to}</td>"
                f"<td>{_duration(a.end - a.start + report.step)}</td><td>{_labels(a.labels)}</td></tr>"
            )
        out.append("</table>")
    elif not report.alerts_error:
        out.append("<p>No alert was pending or firing in Prometheus during the period "
                   "(the <code>ALERTS</code> series).</p>")
    if report.active_alerts_error:
        out.append("<h3>Active in Alertmanager when the report was written</h3>")
        out.append(f'<p class="error">{escape(report.active_alerts_error)}</p>')
    if report.active_alerts is not None:
        out.append("<h3>Active in Alertmanager when the report was written</h3>")
        if not report.active_alerts:
            out.append("<p>None.</p>")
        else:
            out.append("<table><tr><th>Alert</th><th>State</th><th>Severity</th>"
                       "<th>Starts at</th><th>Summary</th><th>Labels</th></tr>")
            for am in report.active_alerts:
                out.append(
                    f"<tr><td>{escape(am.name)}</td><td>{escape(am.state)}</td>"
                    f"<td>{escape(am.severity)}</td><td>{escape(am.starts_at)}</td>"
                    f"<td>{escape(am.summary)}</td><td>{_labels(am.labels)}</td></tr>"
                )
            out.append("</table>")
    return "".join(out)
