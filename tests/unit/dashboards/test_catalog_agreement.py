"""The catalog, the dashboards and the rules agree, and the catalog stores
nothing they generate: each KPI names its dashboard and row, and these tests
check those names against what the generators produce."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from modelmon import dashboards
from modelmon.alerting import ThresholdsConfig, rule_groups
from modelmon.alerting.promql import BUILTIN_SERIES, kpi_of
from modelmon.catalog import CATALOG, by_name
from modelmon.dashboards.common import Row, fill_from_catalog
from modelmon.dashboards.references import dashboard_rows, kpi_references, rule_metrics
from modelmon.kpi import DashboardName

CONFIG = ThresholdsConfig()


def test_the_dashboards_a_kpi_can_name_are_the_prometheus_dashboards() -> None:
    names = {m.NAME for m in dashboards.modules()}
    assert set(typing.get_args(DashboardName)) == names - {"logs-elasticsearch"}
    assert {m.UID for m in dashboards.modules()} == {f"modelmon-{n}" for n in names}


def test_every_kpi_names_a_row_its_dashboard_has() -> None:
    rows = dashboard_rows(CONFIG)
    wrong = {k.name: (k.dashboard, k.row) for k in CATALOG if k.row not in rows.get(k.dashboard, [])}
    assert not wrong, f"KPIs naming a dashboard row that does not exist: {wrong}; rows: {rows}"


def test_every_kpi_is_shown_in_the_row_it_names() -> None:
    refs = kpi_references(CONFIG)
    missing = {
        k.name: (k.dashboard, k.row, [(p.dashboard, p.row, p.title) for p in refs[k.name].panels])
        for k in CATALOG
        if not any((p.dashboard, p.row) == (k.dashboard, k.row) for p in refs[k.name].panels)
    }
    assert not missing, (
        "KPIs whose own dashboard row has no panel reading them (a hand-written panel of the "
        f"dashboard shows them elsewhere: move it, or fix the KPI's row=): {missing}"
    )


def test_a_kpi_naming_a_missing_row_fails_the_build_with_its_name() -> None:
    stray = dataclasses.replace(by_name("inference_in_flight"), row="No such row")
    with pytest.raises(ValueError, match="'inference_in_flight' names row 'No such row'"):
        fill_from_catalog("model-service", [Row("Latency and saturation")], "modelmon_", [stray])


def test_a_kpi_no_hand_written_panel_shows_gets_one_in_its_row() -> None:
    kpi = by_name("inference_in_flight")
    filled = fill_from_catalog("model-service", [Row("Traffic"), Row("Latency")], "modelmon_",
                               [dataclasses.replace(kpi, row="Latency")])
    assert [len(r.panels) for r in filled] == [0, 1]
    assert "modelmon_inference_in_flight" in filled[1].panels[0].targets[0].expr


def test_every_alert_watches_a_catalog_kpi() -> None:
    """An alert reading only metrics outside the catalog would be invisible in docs/KPIS.md."""
    for alert, metrics in rule_metrics(rule_groups(CONFIG)).items():
        if ":" in alert:
            continue  # a recording rule
        kpis = {m for m in metrics if kpi_of(m, CONFIG.prefix) is not None}
        unknown = metrics - kpis - BUILTIN_SERIES
        assert not unknown, f"{alert} reads metrics outside the catalog: {unknown}"
        assert kpis or metrics <= BUILTIN_SERIES, alert
