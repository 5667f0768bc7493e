"""The thresholds config: overrides reach the rules, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelmon import cli
from modelmon.alerting import load_thresholds, render_all, rule_groups, thresholds_from_mapping
from modelmon.alerting.promql import metric_names
from modelmon.config import ConfigError
from modelmon.thresholds import prom_duration


def _alert(config, name: str) -> dict:
    return next(
        r for g in rule_groups(config) for r in g["rules"] if r.get("alert") == name
    )


def test_overrides_change_the_generated_thresholds() -> None:
    config = thresholds_from_mapping({
        "slo": {"availability_target": 0.99, "latency_objective_seconds": 0.25, "page_for": "30s"},
        "quality": {"drift_threshold": 0.2, "drift_method": "js"},
        "evaluation_interval": "15s",
    })
    fast = _alert(config, "ModelErrorBudgetBurningFast")
    assert "(14.4 * 0.01)" in fast["expr"] and fast["for"] == "30s"
    assert 'le="0.25"' in render_all(config)["modelmon.rules.yml"]
    drift = _alert(config, "ModelFeatureDrift")
    assert 'method="js"' in drift["expr"] and drift["expr"].endswith("> 0.2")
    assert all(g["interval"] == "15s" for g in rule_groups(config))


def test_zero_for_omits_the_field() -> None:
    config = thresholds_from_mapping({"slo": {"page_for": "0s"}})
    assert "for" not in _alert(config, "ModelErrorBudgetBurningFast")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slo": {"availability_target": 1.5}}, "slo.availability_target: expected a ratio"),
        ({"slo": {"page_for": "soon"}}, "slo.page_for: expected a duration"),
        ({"slo": {"latency_objective_seconds": 0.3}}, "not a bucket bound"),
        ({"slo": {"target": 0.9}}, "slo: unknown key(s) target"),
        ({"sloo": {}}, "unknown key(s) sloo"),
        ({"quality": {"drift_method": "kl"}}, "quality.drift_method: expected one of psi"),
        # spool limits come from the agents' own metrics now, not the rules config
        ({"edge": {"spool_max_bytes": 1}}, "edge: unknown key(s) spool_max_bytes"),
        ({"quality": "strict"}, "quality: expected a mapping"),
    ],
)
def test_mistakes_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as excinfo:
        rule_groups(thresholds_from_mapping(data))
    assert message in str(excinfo.value)


def test_cli_reports_a_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "thresholds.yml"
    bad.write_text(yaml.safe_dump({"slo": {"availability_target": "high"}}))
    assert cli.main(["rules", "build", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "slo.availability_target" in err


def test_defaults_file_round_trips() -> None:
    text = render_all(load_thresholds(None))["config.defaults.yml"]
    assert thresholds_from_mapping(yaml.safe_load(text)) == load_thresholds(None)


def test_prom_duration() -> None:
    assert prom_duration(0) == "0s"
    assert prom_duration(90) == "1m30s"
    assert prom_duration(86400 * 3) == "3d"
    assert prom_duration(0.5) == "500ms"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (model, version) (rate(a_total{outcome="error", x=~"$m"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ("x / ignoring (class) group_left sum without (class) (y) > 1e3", {"x", "y"}),
        ("model:m_errors:ratio_rate5m > (14.4 * 0.001) and on (model) c offset 1h", {"model:m_errors:ratio_rate5m", "c"}),
        ("time() - max_over_time(d[1d]) unless e == bool 0", {"d", "e"}),
        ('f{a="by (x)"} or g', {"f", "g"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_burn_rate_windows_come_from_the_config() -> None:
    # The demo's time compression: the same rules with seconds-long windows.
    config = thresholds_from_mapping({"slo": {
        "page_windows": [["1m", "10s", 14.4]], "ticket_windows": [["5m", "1m", 1]],
    }})
    records = {r["record"] for g in rule_groups(config) for r in g["rules"] if "record" in r}
    assert "model:modelmon_inference_errors:ratio_rate10s" in records
    assert "model:modelmon_inference_errors:ratio_rate5m" in records
    assert not any(r.endswith("rate1h") for r in records)
    fast = _alert(config, "ModelErrorBudgetBurningFast")
    assert "ratio_rate1m > (14.4 * 0.001)" in fast["expr"]
    assert "ratio_rate10s > (14.4 * 0.001)" in fast["expr"]
    assert "6h" not in fast["expr"] and "1m burn-rate checks" in fast["annotations"]["description"]
    # every series an alert reads is recorded
    for name in metric_names(fast["expr"]):
        assert name in records


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ([["1h", "5m"]], "expected a non-empty list of [long window, short window, burn-rate"),
        ([], "expected a non-empty list"),
        ([["5m", "1h", 14.4]], "the short window must be shorter"),
        ([["1h", "5m", 0]], "the burn-rate factor must be a positive number"),
        ([["1h", "soon", 2]], "slo.page_windows[0]: expected a duration"),
    ],
)
def test_burn_rate_window_mistakes_name_the_field(windows: list, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        thresholds_from_mapping({"slo": {"page_windows": windows}})
    assert "slo.page_windows" in str(excinfo.value) and message in str(excinfo.value)
