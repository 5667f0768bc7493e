"""The report's panels are the dashboards' own, with Grafana's variables put in
place as Grafana would; alert stretches, steps and legends as documented."""

from __future__ import annotations

import json
import re

from modelmon.dashboards import render_all
from modelmon.dashboards.references import prometheus_targets
from modelmon.dashboards.report import panels
from modelmon.dashboards.report.collect import POINTS_PER_CHART, choose_step
from modelmon.dashboards.report.prometheus import _stretches
from modelmon.thresholds import ThresholdsConfig


def test_every_prometheus_target_of_every_dashboard_is_in_the_report() -> None:
    expected = [
        (title, expr)
        for text in render_all(ThresholdsConfig()).values()
        for title, expr in prometheus_targets(json.loads(text))
    ]
    got = [(p.title, t.expr) for d in panels.dashboards() for p in d.panels for t in p.targets]
    assert got == expected
    assert len(got) > 60


def test_threshold_lines_and_units_come_from_the_dashboard() -> None:
    service = next(d for d in panels.dashboards() if d.uid == "modelmon-model-service")
    error_ratio = next(p for p in service.panels if p.title == "Error ratio")
    budget = 1 - ThresholdsConfig().slo.availability_target
    assert error_ratio.unit == "percentunit"
    assert error_ratio.thresholds[0] == (round(budget * 1.0, 6), "orange")
    calls = next(p for p in service.panels if p.title == "Inference calls by outcome")
    assert calls.stacked and calls.unit == "reqps" and calls.thresholds == ()


def test_variables_resolve_to_valid_matchers() -> None:
    variables = {"__rate_interval": "60s", "model": panels.regex_value('fraud.v2"x'),
                 "version": panels.ALL, "device": panels.ALL, "drift_method": "psi"}
    for board in panels.dashboards():
        for panel in board.panels:
            for target in panel.targets:
                resolved = panels.resolve(target.expr, variables)
                assert "$" not in resolved, resolved
    # The literal value, regex-escaped, then escaped for a PromQL string.
    assert panels.regex_value('fraud.v2"x') == 'fraud\\\\.v2\\"x'
    assert panels.regex_value(None) == ".*"
    assert panels.resolve("$model_x $model ${model}", {"model": "m", "model_x": "X"}) == "X m m"


def test_rate_interval_is_grafanas() -> None:
    assert panels.rate_interval(step=1, scrape_interval=15) == 60
    assert panels.rate_interval(step=120, scrape_interval=15) == 135


def test_step_follows_the_period_and_never_beats_the_scrape() -> None:
    assert choose_step(6 * 3600, 15) == 6 * 3600 / POINTS_PER_CHART
    assert choose_step(60, 15) == 15
    assert choose_step(30, 0.5) == 1


def test_legend_format() -> None:
    labels = {"__name__": "x", "model": "fraud", "version": "3"}
    assert panels.legend("{{model}} {{ version }} p95", labels) == "fraud 3 p95"
    assert panels.legend("", labels) == 'x{model="fraud", version="3"}'


def test_alert_stretches_split_on_gaps() -> None:
    assert _stretches([10, 11, 12, 20, 21, 30], step=1) == [(10, 12), (20, 21), (30, 30)]
    assert _stretches([], step=1) == []


def test_dashboard_titles_name_their_variables() -> None:
    titles = [p.title for d in panels.dashboards() for p in d.panels]
    assert any("$drift_method" in t for t in titles)
    quality = next(d for d in panels.dashboards() if d.uid == "modelmon-model-quality")
    assert quality.defaults == {"drift_method": ThresholdsConfig().quality.drift_method}
    assert all(re.fullmatch(r"[A-Za-z_]+", name) for name in quality.defaults)
