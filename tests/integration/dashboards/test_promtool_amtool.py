"""The committed rules and Alertmanager example, checked by the real tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from modelmon.alerting import ThresholdsConfig, render_all

from .conftest import REPO, binary

RULES = REPO / "alert_rules"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=RULES)


def test_promtool_check_rules_accepts_the_rule_files() -> None:
    # The cloud rules and the edge rule file (what a device evaluates itself).
    for name in ("modelmon.rules.yml", "modelmon.edge.rules.yml"):
        result = _run(binary("promtool"), "check", "rules", str(RULES / name))
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_groups_of_the_prometheus_rule(tmp_path: Path) -> None:
    resource = yaml.safe_load((RULES / "modelmon.prometheusrule.yaml").read_text())
    spec = tmp_path / "spec.rules.yml"
    spec.write_text(yaml.safe_dump(resource["spec"]))
    result = _run(binary("promtool"), "check", "rules", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (RULES / "tests").glob("*.test.yml"))
    result = _run(binary("promtool"), "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: rules built with others fail them."""
    from modelmon.alerting import thresholds_from_mapping

    moved = thresholds_from_mapping({"quality": {"drift_threshold": 0.5}})
    (tmp_path / "modelmon.rules.yml").write_text(render_all(moved)["modelmon.rules.yml"])
    test = tmp_path / "tests" / "quality.test.yml"
    test.parent.mkdir()
    test.write_text((RULES / "tests" / "quality.test.yml").read_text())
    result = subprocess.run(
        [binary("promtool"), "test", "rules", str(test)], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ModelFeatureDrift" in result.stdout + result.stderr


def test_every_alert_has_a_positive_and_a_negative_promtool_case() -> None:
    from modelmon.alerting import alert_names, rule_groups

    positive: set[str] = set()
    negative: set[str] = set()
    for path in (RULES / "tests").glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (positive if case.get("exp_alerts") else negative).add(case["alertname"])
    names = set(alert_names(rule_groups(ThresholdsConfig())))
    assert names - positive == set(), "alerts without a firing test case"
    assert names - negative == set(), "alerts without a quiet test case"


def test_amtool_accepts_the_alertmanager_example() -> None:
    result = _run(binary("amtool"), "check-config", str(RULES / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout
