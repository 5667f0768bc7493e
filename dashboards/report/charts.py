"""Plotly figure specs (plain JSON) of the report's panels: the Grafana panel's
unit on the axis, its threshold lines, stacking and legend names.

Specs are built as dicts rather than ``plotly.graph_objects``: the page draws
them with plotly.js, and the report needs no more of the Python package than
the bundled JavaScript (``html.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelmon.dashboards.report.panels import Panel
from modelmon.dashboards.report.prometheus import AlertPeriod, Series

MAX_SERIES_PER_PANEL = 40  # more lines than anyone can read; the rest is counted on the panel

# Grafana unit -> (plotly d3 tick format, suffix). SI prefixes where Grafana scales
# (1.2 ms, 3.4 MB); a plain number otherwise.
_UNITS: dict[str, tuple[str, str]] = {
    "percentunit": (".2~%", ""),
    "percent": ("~g", "%"),
    "s": ("~s", "s"),
    "ms": ("~s", "ms"),
    "bytes": ("~s", "B"),
    "Bps": ("~s", "B/s"),
    "reqps": ("~g", " req/s"),
    "ops": ("~g", " ops/s"),
    "cps": ("~g", " /s"),
    "celsius": ("~g", " °C"),
}
# Grafana's classic palette, so a report and its dashboard look alike.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9",
           "#705DA0", "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C"]


@dataclass(frozen=True)
class Line:
    name: str
    series: Series


def figure(panel: Panel, lines: Sequence[Line], start: float, end: float,
           step: float) -> dict[str, Any]:
    """The plotly spec of ``panel`` drawing ``lines`` over [start, end]."""
    tick_format, suffix = _UNITS.get(panel.unit, ("~g", ""))
    data = []
    for i, line in enumerate(lines[:MAX_SERIES_PER_PANEL]):
        xs, ys = _with_gaps(line.series.points, step)
        trace: dict[str, Any] = {
            "type": "scatter", "mode": "lines", "name": line.name, "x": xs, "y": ys,
            "line": {"width": 1.5, "color": PALETTE[i % len(PALETTE)]},
            "hovertemplate": f"%{{y:{tick_format}}}{suffix}<extra>%{{fullData.name}}</extra>",
        }
        if len(ys) == 1 or all(y is None for y in ys[1:]):
            trace["mode"] = "lines+markers"  # a single point draws nothing as a line
        if panel.stacked:
            trace["stackgroup"] = "stack"
            trace["fillcolor"] = PALETTE[i % len(PALETTE)] + "55"
        data.append(trace)
    yaxis: dict[str, Any] = {"tickformat": tick_format, "ticksuffix": suffix,
                             "zeroline": True, "rangemode": "tozero", "automargin": True}
    if panel.unit == "bool":
        yaxis.update(tickvals=[0, 1], range=[-0.05, 1.05], tickformat="")
    shapes = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value,
         "line": {"color": color, "width": 1, "dash": "dash"}}
        for value, color in panel.thresholds
    ]
    return {
        "data": data,
        "layout": {
            "height": 300, "margin": {"l": 50, "r": 10, "t": 10, "b": 30},
            "xaxis": {"type": "date", "range": [start * 1000, end * 1000], "automargin": True},
            "yaxis": yaxis, "shapes": shapes, "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.15, "yanchor": "top", "font": {"size": 10}},
            "showlegend": True, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "font": {"family": "system-ui, sans-serif", "size": 11},
        },
    }


def alert_timeline(periods: Sequence[AlertPeriod], start: float, end: float,
                   step: float) -> dict[str, Any]:
    """A bar per alert stretch: firing red, pending orange, one lane per alert and labels."""
    lanes: list[str] = []
    data = []
    for period in periods:
        lane = period.name + "".join(f" {v}" for _, v in sorted(period.labels.items())
                                     if _ in ("model", "device", "version"))
        if lane not in lanes:
            lanes.append(lane)
        # A stretch of one evaluation still covers one step on the chart.
        width = max(period.end - period.start, step) * 1000
        data.append({
            "type": "bar", "orientation": "h", "base": [period.start * 1000], "x": [width],
            "y": [lane], "name": period.state, "showlegend": False,
            "marker": {"color": "#E24D42" if period.state == "firing" else "#EF843C"},
            "hovertemplate": f"{period.name} {period.state}<extra></extra>",
        })
    return {
        "data": data,
        "layout": {
            "height": 60 + 28 * max(1, len(lanes)), "barmode": "overlay",
            "margin": {"l": 10, "r": 10, "t": 10, "b": 30},
            "xaxis": {"type": "date", "range": [start * 1000, end * 1000]},
            "yaxis": {"automargin": True, "autorange": "reversed", "categoryorder": "array",
                      "categoryarray": lanes},
            "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "font": {"family": "system-ui, sans-serif", "size": 11},
        },
    }


def _with_gaps(points: Sequence[tuple[float, float | None]],
               step: float) -> tuple[list[int], list[float | None]]:
    """Epoch-millisecond x and y, with a null where Prometheus had no sample for
    longer than a step and a half, so a gap (an outage) shows as one."""
    xs: list[int] = []
    ys: list[float | None] = []
    previous: float | None = None
    for t, v in points:
        if previous is not None and t - previous > step * 1.5:
            xs.append(int((previous + step) * 1000))
            ys.append(None)
        xs.append(int(t * 1000))
        ys.append(v)
        previous = t
    return xs, ys
