"""``modelmon report``: the Grafana dashboards' panels as one self-contained
HTML file, for a machine without Grafana or to attach to an incident.

The panels, their PromQL, legends, units and threshold lines are the
dashboards' own (``modelmon.dashboards``, generated from the KPI catalog and
the thresholds config): the report reads the generated dashboard JSON and runs
each target through Prometheus's ``query_range`` over the period, with
Grafana's variables put in place as Grafana would (``$model`` and ``$device``
from the filters, ``$__rate_interval`` from the step and the scrape interval).
The alerts of the period come from the ``ALERTS`` series, and optionally the
alerts active in Alertmanager.

Charts are drawn by plotly.js, inlined from the ``plotly`` package (extra
``report``). Chosen over matplotlib SVG because a report is read like a
dashboard: hover shows each series' value at an instant, zoom narrows to the
minutes of an incident, a legend click hides a series; plotly.js is one
MIT-licensed file that needs no network once inlined, and it is maintained by
Plotly with frequent releases. The price is about 4.8 MB per report (the
bundle), acceptable for an incident attachment.

    from modelmon.dashboards.report import write_report
    write_report("http://127.0.0.1:9090", "report.html", since_seconds=6 * 3600)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

# Resolved on first access: the command line imports this package to register
# ``modelmon report``, and that must not load requests, the dashboards and the
# rules for every ``modelmon --help``.
_EXPORTS = {
    "write_report": "modelmon.dashboards.report.writer",
    "ReportData": "modelmon.dashboards.report.collect",
    "ReportError": "modelmon.dashboards.report.prometheus",
}

if TYPE_CHECKING:
    from modelmon.dashboards.report.collect import ReportData
    from modelmon.dashboards.report.prometheus import ReportError
    from modelmon.dashboards.report.writer import write_report

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["ReportData", "ReportError", "write_report"]
