"""The page carries what Prometheus returned as data, never as markup: label
values and alert labels come from whoever sends metrics."""

from __future__ import annotations

import json
import re

from modelmon.dashboards.report.charts import Line
from modelmon.dashboards.report.collect import DashboardData, PanelData, ReportData
from modelmon.dashboards.report.panels import Dashboard, Panel, Target
from modelmon.dashboards.report.prometheus import AlertPeriod, Series

HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def _report() -> ReportData:
    panel = Panel("modelmon / Test", "Row", "Calls", "Calls per second.", "reqps", 12, False,
                  ((0.5, "red"),), (Target("up", "{{model}}"),))
    series = Series({"model": HOSTILE}, [(100.0, 1.0), (101.0, None),
                                         (105.0, 2.0)])
    data = PanelData(panel, ["up"], [Line(HOSTILE, series)])
    empty = PanelData(Panel("modelmon / Test", "Row", "Nothing", "d", "s", 12, False, (),
                            (Target("absent", ""),)), ["absent"])
    alert = AlertPeriod("Alert", "firing", "page", {"model": HOSTILE}, 100.0, 105.0, True)
    return ReportData("http://prom", 100.0, 106.0, 1.0, 4.0, None, None,
                      [DashboardData(Dashboard("u", "modelmon / Test", (panel,), {}),
                                     [data, empty])],
                      [alert], None, None, None, 107.0)


def test_hostile_label_values_stay_text() -> None:
    from modelmon.dashboards.report.html import render

    page = render(_report(), plotly="/* plotly */")
    assert HOSTILE not in page
    assert "onerror=alert(1)>" not in page
    # Exactly the page's own three script elements.
    assert len(re.findall(r"<script[ >]", page)) == 3
    figures = json.loads(re.search(
        r'<script type="application/json" id="modelmon-figures">(.*?)</script>', page,
        re.S).group(1))
    trace = figures["p0-0"]["data"][0]
    assert trace["name"] == HOSTILE  # data, decoded by JSON.parse, drawn as text by plotly
    # A gap longer than a step and a half is a null, so the line breaks there.
    assert trace["y"] == [1.0, None, None, 2.0]
    assert figures["p0-0"]["layout"]["shapes"][0]["y0"] == 0.5
    assert "p0-1" not in figures and "No data" in page
