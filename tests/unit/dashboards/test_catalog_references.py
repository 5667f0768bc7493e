"""The catalog declares, per KPI, the dashboard panel that shows it and the
alerts that watch it; this must equal what the generated artifacts contain."""

from __future__ import annotations

from modelmon.catalog import CATALOG
from modelmon.dashboards.references import catalog_fields


def test_catalog_panel_and_alerts_match_the_generated_dashboards_and_rules():
    derived = catalog_fields()
    wrong = {
        k.name: {"catalog": (k.panel, k.alerts), "generated": derived[k.name]}
        for k in CATALOG
        if (k.panel, k.alerts) != derived[k.name]
    }
    assert not wrong, (
        "catalog panel/alerts disagree with the generated dashboards and rules; set them to "
        f"the 'generated' values (panel='<dashboard uid>: <panel title>'): {wrong}"
    )


def test_every_kpi_is_on_a_panel():
    assert [k.name for k in CATALOG if not k.panel] == []
