"""The committed dashboards and rules are what the generators produce, and
follow the conventions Grafana, Prometheus and the mixins rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelmon import cli
from modelmon.alerting import render_all, rule_groups
from modelmon.dashboards import DASHBOARDS
from modelmon.dashboards import render_all as render_dashboards
from modelmon.dashboards.references import json_panels
from modelmon.thresholds import ThresholdsConfig

REPO = Path(__file__).resolve().parents[3]
DASHBOARD_DIR = REPO / "dashboards" / "json"
RULES_DIR = REPO / "alert_rules"


def test_committed_dashboards_are_fresh() -> None:
    for name, text in render_dashboards().items():
        assert (DASHBOARD_DIR / name).read_text() == text, (
            f"dashboards/json/{name} is stale: run 'modelmon dashboards build'"
        )


def test_committed_rules_are_fresh() -> None:
    for name, text in render_all(ThresholdsConfig()).items():
        assert (RULES_DIR / name).read_text() == text, (
            f"alert_rules/{name} is stale: run 'modelmon rules build'"
        )


@pytest.mark.parametrize("command", ["dashboards", "rules"])
def test_check_fails_on_a_stale_file_and_build_fixes_it(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / command
    assert cli.main([command, "build", "--out", str(out)]) == 0
    assert cli.main([command, "build", "--out", str(out), "--check"]) == 0
    victim = sorted(out.iterdir())[0]
    victim.write_text(victim.read_text() + "\n# hand edit\n")
    assert cli.main([command, "build", "--out", str(out), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main([command, "build", "--out", str(out)]) == 0
    assert cli.main([command, "build", "--out", str(out), "--check"]) == 0


def _dashboards() -> dict[str, dict]:
    return {name: json.loads(text) for name, text in render_dashboards().items()}


def test_every_dashboard_has_a_stable_uid_variables_and_a_recent_schema() -> None:
    dashboards = _dashboards()
    assert set(dashboards) == set(DASHBOARDS.values())
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, dash in dashboards.items():
        assert re.fullmatch(r"modelmon-[a-z-]+", dash["uid"]) and len(dash["uid"]) <= 40, name
        assert dash["schemaVersion"] >= 36, name
        assert "id" not in dash and "__inputs" not in dash, f"{name}: breaks file provisioning"
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert {"model", "version", "device"} <= set(variables), name
        for var in variables.values():
            if var["type"] == "query":
                assert var["datasource"]["uid"] == "${datasource}", (name, var["name"])


def test_every_panel_is_a_timeseries_or_table_with_unit_and_description() -> None:
    for name, dash in _dashboards().items():
        all_panels = [panel for _, panel in json_panels(dash)]
        assert all_panels, name
        for panel in all_panels:
            where = f"{name}: {panel['title']}"
            assert panel["type"] in ("timeseries", "table"), f"{where}: legacy panel type"
            assert panel["description"], f"{where}: no description"
            assert panel["fieldConfig"]["defaults"]["unit"], f"{where}: no unit"
            assert panel["datasource"]["uid"] == "${datasource}", where
            assert panel["targets"], where
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), name
        # Grid positions never overlap.
        cells = set()
        for p in dash["panels"]:
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']} overlaps"
                    cells.add((x, y))


def test_prefix_is_applied_everywhere() -> None:
    for text in render_dashboards(ThresholdsConfig(prefix="acme_")).values():
        assert "modelmon_" not in text
    rules = render_all(ThresholdsConfig(prefix="acme_"))["modelmon.rules.yml"]
    assert "acme_inference_requests_total" in rules
    assert not re.search(r"\bmodelmon_\w+", rules.split("runbook", 1)[0])


def test_rule_groups_render_as_prometheus_rule_resource() -> None:
    import yaml

    resource = yaml.safe_load(render_all(ThresholdsConfig())["modelmon.prometheusrule.yaml"])
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == rule_groups(ThresholdsConfig())
