"""One thresholds file drives both the rules and the dashboards: a number
changed in it moves the alert and the line on the panel that shows what the
alert watches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelmon import cli
from modelmon.dashboards.references import json_panels

THRESHOLDS = {
    "slo": {"availability_target": 0.995, "latency_target": 0.95,
            "latency_objective_seconds": 0.25},
    "quality": {"drift_threshold": 0.37, "prediction_drift_threshold": 0.41,
                "drift_method": "js", "violation_ratio": 0.02, "min_accuracy": 0.9},
    "edge": {"offline_after": "40m", "backlog_limit_ratio": 0.65},
}


def _build(tmp_path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    config = tmp_path / "thresholds.yml"
    config.write_text(yaml.safe_dump(THRESHOLDS))
    dash_dir, rules_dir = tmp_path / "dashboards", tmp_path / "rules"
    assert cli.main(["dashboards", "build", "--config", str(config), "--out", str(dash_dir)]) == 0
    assert cli.main(["rules", "build", "--config", str(config), "--out", str(rules_dir)]) == 0
    panels = {
        f"{dash['uid']} / {panel['title']}": panel
        for dash in (json.loads(p.read_text()) for p in dash_dir.glob("*.json"))
        for _, panel in json_panels(dash)
    }
    groups = yaml.safe_load((rules_dir / "modelmon.rules.yml").read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    return panels, alerts


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["value"], s["color"]) for s in steps]


def test_a_changed_threshold_moves_the_alert_and_the_panel_line(tmp_path: Path) -> None:
    panels, alerts = _build(tmp_path)

    assert alerts["ModelFeatureDrift"]["expr"].endswith("> 0.37")
    assert (0.37, "red") in _steps(panels["modelmon-model-quality / Feature drift ($drift_method)"])
    assert alerts["ModelPredictionDrift"]["expr"].endswith("> 0.41")
    assert (0.41, "red") in _steps(
        panels["modelmon-model-quality / Prediction drift ($drift_method)"])

    assert "> 0.02" in alerts["ModelDataQualityViolations"]["expr"]
    assert (0.02, "red") in _steps(
        panels["modelmon-model-quality / Data-quality problems per input row"])

    assert "< 0.9" in alerts["ModelAccuracyDrop"]["expr"]
    for title in ("Fleet accuracy", "Accuracy from feedback per process"):
        assert _steps(panels[f"modelmon-model-quality / {title}"]) == [
            (None, "red"), (0.9, "green")], title

    # Error budget 0.5%: the page burns 14.4x it.
    assert "(14.4 * 0.005)" in alerts["ModelErrorBudgetBurningFast"]["expr"]
    for title in ("Error ratio", "Error ratio by burn-rate window"):
        assert _steps(panels[f"modelmon-model-service / {title}"])[1:] == [
            (0.005, "orange"), (0.072, "red")], title
    assert "(14.4 * 0.05)" in alerts["ModelLatencyBudgetBurningFast"]["expr"]
    assert _steps(panels["modelmon-model-service / Slow-call ratio by burn-rate window"])[1:] == [
        (0.05, "orange"), (0.72, "red")]
    assert "0.25s" in alerts["ModelLatencyBudgetBurningFast"]["annotations"]["description"]
    assert (0.25, "red") in _steps(
        panels["modelmon-model-service / Inference latency p50 / p95 / p99"])

    assert alerts["EdgeDeviceOffline"]["expr"].endswith("> 2400")
    assert (2400, "red") in _steps(panels["modelmon-edge-fleet / Time since last sync"])
    assert "> 0.65" in alerts["EdgeBacklogNearLimit"]["expr"]
    assert (0.65, "red") in _steps(panels["modelmon-edge-fleet / Spool use of its limits"])


def test_the_drift_method_variable_starts_at_the_alerts_method(tmp_path: Path) -> None:
    panels, alerts = _build(tmp_path)
    assert 'method="js"' in alerts["ModelFeatureDrift"]["expr"]
    dash = json.loads((tmp_path / "dashboards" / "modelmon-model-quality.json").read_text())
    variable = next(v for v in dash["templating"]["list"] if v["name"] == "drift_method")
    assert variable["current"]["value"] == "js"


def test_the_default_drift_line_is_the_default_threshold_not_a_constant() -> None:
    from modelmon.dashboards import model_quality
    from modelmon.thresholds import ThresholdsConfig, thresholds_from_mapping

    for config in (ThresholdsConfig(), thresholds_from_mapping({"quality": {"drift_threshold": 0.12}})):
        value = config.quality.drift_threshold
        rows = model_quality.rows(config)
        drift = next(p for r in rows for p in r.panels if p.title.startswith("Feature drift"))
        assert drift.thresholds[-1] == {"color": "red", "value": value}
