"""`modelmon zabbix template`: the committed template is current, follows the catalog and
the thresholds config, and hangs together (every trigger reads items of its own rule).
Zabbix itself checks it in tests/integration/core/test_zabbix_template.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from modelmon.catalog import CATALOG
from modelmon.cli import main
from modelmon.thresholds import ThresholdsConfig, thresholds_from_mapping
from modelmon.zabbix import (
    FILE_NAME,
    MASTER_KEY,
    TEMPLATE_NAME,
    build_template,
    included,
    zabbix_duration,
)

REPO = Path(__file__).resolve().parents[3]


def _template(config: ThresholdsConfig) -> dict[str, Any]:
    template: dict[str, Any] = build_template(config)["zabbix_export"]["templates"][0]
    return template


def test_committed_template_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zabbix", "template", "--check", "--out", str(REPO / "zabbix")]) == 0, \
        capsys.readouterr().err


def test_check_reports_a_stale_template(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zabbix", "template", "--out", str(tmp_path)]) == 0
    (tmp_path / FILE_NAME).write_text((tmp_path / FILE_NAME).read_text() + "# edited\n")
    assert main(["zabbix", "template", "--check", "--out", str(tmp_path)]) == 1
    assert "modelmon zabbix template" in capsys.readouterr().err


def test_every_watched_kpi_has_a_dependent_item_with_a_prometheus_pattern() -> None:
    template = _template(ThresholdsConfig())
    master = next(i for i in template["items"] if i["key"] == MASTER_KEY)
    assert master["type"] == "HTTP_AGENT" and master["url"] == "{$MODELMON.METRICS.URL}"
    patterns = {
        step["parameters"][0].split("{")[0]
        for rule in template["discovery_rules"] for item in rule["item_prototypes"]
        for step in item["preprocessing"] if step["type"] == "PROMETHEUS_PATTERN"
    }
    watched = [k for k in CATALOG if included(k)]
    assert len(watched) > 60
    for kpi in watched:
        sample = kpi.full_name() + ("_count" if kpi.type == "histogram" else "")
        assert sample in patterns, kpi.name
    # Fleet-only series (bins, confusion matrix) stay out: thousands of items per model.
    assert not any("_cumulative_bin_" in p or "confusion" in p for p in patterns)


def test_each_discovery_rule_finds_its_label_set_and_names_its_macros() -> None:
    for rule in _template(ThresholdsConfig())["discovery_rules"]:
        labels = rule["key"][len("modelmon.discovery["):-1].split(",")
        assert [m["lld_macro"] for m in rule["lld_macro_paths"]] == \
            ["{#" + x.upper() + "}" for x in labels]
        assert [s["type"] for s in rule["preprocessing"]] == ["PROMETHEUS_TO_JSON", "JAVASCRIPT"]
        for item in rule["item_prototypes"]:
            assert item["master_item"] == {"key": MASTER_KEY}
            for label in labels:
                assert '"{#' + label.upper() + '}"' in item["key"], item["key"]


def test_triggers_read_only_items_of_their_own_discovery_rule() -> None:
    reference = re.compile(r"/" + re.escape(TEMPLATE_NAME) + r"/(modelmon\.\w+\[[^\]]*\])")
    names = []
    for rule in _template(ThresholdsConfig())["discovery_rules"]:
        keys = {i["key"] for i in rule["item_prototypes"]}
        for trigger in rule["trigger_prototypes"]:
            used = reference.findall(trigger["expression"])
            assert used and set(used) <= keys, trigger["name"]
            names.append(trigger["tags"][0]["value"])
    assert {"ModelErrorBudgetBurningFast", "ModelLatencyBudgetBurningSlow",
            "ModelFeatureDrift", "ModelAccuracyDrop", "EdgeDeviceOffline", "LogShipperDroppingEvents"} <= set(names)


def test_thresholds_config_flows_into_macros_and_burn_windows() -> None:
    config = thresholds_from_mapping({
        "quality": {"drift_threshold": 0.3, "drift_for": "45m"},
        "slo": {"availability_target": 0.995, "page_windows": [["2h", "10m", 10]]},
    })
    template = _template(config)
    macros = {m["macro"]: m["value"] for m in template["macros"]}
    assert macros["{$MODELMON.DRIFT.MAX}"] == "0.3"
    assert macros["{$MODELMON.DRIFT.FOR}"] == "45m"
    assert macros["{$MODELMON.SLO.AVAILABILITY}"] == "0.995"
    page = next(t for r in template["discovery_rules"] for t in r["trigger_prototypes"]
                if t["tags"][0]["value"] == "ModelErrorBudgetBurningFast")
    assert ",2h)>10*(1-{$MODELMON.SLO.AVAILABILITY})" in page["expression"]
    assert ",10m)>10*" in page["expression"] and " or " not in page["expression"]


@pytest.mark.parametrize(("prom", "zabbix"), [
    ("90s", "90s"), ("1m30s", "90s"), ("15m", "15m"), ("1h", "1h"), ("1d", "1d"),
    ("7d", "1w"), ("2h30m", "150m"),
])
def test_durations_become_zabbix_time_suffixes(prom: str, zabbix: str) -> None:
    assert zabbix_duration(prom) == zabbix


def test_uuids_are_stable_and_unique() -> None:
    text = str(build_template(ThresholdsConfig()))
    uuids = re.findall(r"'uuid': '([0-9a-f]{32})'", text)
    assert len(uuids) == len(set(uuids)) > 100
    assert uuids == re.findall(r"'uuid': '([0-9a-f]{32})'", str(build_template(ThresholdsConfig())))


def test_prefix_reaches_every_pattern(tmp_path: Path) -> None:
    assert main(["zabbix", "template", "--prefix", "acme_", "--out", str(tmp_path)]) == 0
    text = (tmp_path / FILE_NAME).read_text()
    assert "acme_inference_requests_total{" in text
    assert "modelmon_" not in text
