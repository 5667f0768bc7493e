"""edge.rules_max_range: no rule (the device's own, a bundle's rule file, the
group a bundle's thresholds generate) may make the rule window keep more than
that much of every series in memory; refused at load, naming the rule, its
reach and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.bundles.format import build_bundle
from modelmon.exporters.edge.rules import RuleFileError, parse_rule_groups
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

SHORT = "groups: [{name: fleet, rules: [{record: 'device:up', expr: 'max_over_time(up[6h])'}]}]\n"
LONG = ("groups: [{name: fleet, rules: [{record: 'device:up', expr: vector(1)},\n"
        "  {alert: UpLongAgo, expr: 'rate(up[30d] offset 1h) > 0'}]}]\n")


def edge_config(tmp_path: Path, **edge: Any) -> dict[str, Any]:
    return {"edge": {
        "device_id": "press-7", "listen": None, "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}, **edge}}


def test_a_device_rule_reading_too_far_back_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "long.yml").write_text(LONG)
    with pytest.raises(ConfigError) as caught:
        edge_config_from_mapping(edge_config(tmp_path, rules=["long.yml"]), tmp_path)
    message = str(caught.value)
    assert "alert 'UpLongAgo'" in message and "group 'fleet'" in message
    assert "30d1h of history" in message and "edge.rules_max_range (6h)" in message
    assert "raise edge.rules_max_range" in message
    # Raised, the same file loads; at the default, a 6h range does too.
    config = edge_config_from_mapping(
        edge_config(tmp_path, rules=["long.yml"], rules_max_range="31d"), tmp_path)
    assert config.rules_max_range == 31 * 86400
    (tmp_path / "short.yml").write_text(SHORT)
    assert edge_config_from_mapping(edge_config(tmp_path, rules=["short.yml"]), tmp_path).rules


def test_the_runner_refuses_it_and_keeps_its_groups_on_replace() -> None:
    with pytest.raises(RuleFileError, match="reads 30d1h of history"):
        EdgeRuleRunner(parse_rule_groups(LONG, "long.yml"), 10.0, {"device": "d"})
    runner = EdgeRuleRunner(parse_rule_groups(SHORT, "short.yml"), 10.0, {"device": "d"})
    window = runner.window_ms
    assert window == 6 * 3_600_000 + 5 * 60_000 + 60_000
    with pytest.raises(RuleFileError, match="UpLongAgo"):
        runner.replace_groups(parse_rule_groups(LONG, "long.yml"), 10.0)
    assert runner.window_ms == window and [e.group.file for e in runner.evaluators] == \
        ["short.yml"]


def bundle(tmp_path: Path, version: str, rules: str,
           thresholds: str | None = None) -> bytes:
    src = tmp_path / f"src-{version}"
    (src / "rules").mkdir(parents=True)
    (src / "rules" / "fleet.yml").write_text(rules)
    spec: dict[str, Any] = {"version": version, "rules": ["rules/*.yml"]}
    if thresholds is not None:
        (src / "thresholds.yml").write_text(thresholds)
        spec["thresholds"] = "thresholds.yml"
    (src / "bundle.yml").write_text(yaml.safe_dump(spec))
    return build_bundle(src)


def agent(tmp_path: Path, **edge: Any) -> EdgeAgent:
    config = edge_config_from_mapping(
        edge_config(tmp_path, collectors=[], bundle={"allow_unsigned": True}, **edge), tmp_path)
    return EdgeAgent(config, CollectorRegistry())


@pytest.mark.parametrize(("rules", "thresholds", "reason", "words"), [
    (LONG, None, "rules", "alert 'UpLongAgo' reads 30d1h of history"),
    # The group regenerated from thresholds keeps every window up to device_rules_window.
    (SHORT, "edge: {device_rules_window: 30d}\n", "thresholds", "group 'modelmon.edge.device'"),
], ids=["rule-file", "thresholds"])
def test_a_bundle_reaching_too_far_back_is_refused_and_the_last_good_runs(
        tmp_path: Path, rules: str, thresholds: str | None, reason: str, words: str) -> None:
    running = agent(tmp_path)
    try:
        assert running.bundles is not None and running.rules is not None
        assert running.bundles.offer(bundle(tmp_path, "v1", SHORT, "slo: {}\n"),
                                     source="import") == "applied"
        window, groups = running.rules.window_ms, running.rules.evaluators
        assert running.bundles.offer(bundle(tmp_path, "v2", rules, thresholds),
                                     source="import") == "refused"
        refusal = running.bundles.status()["last_refusal"]
        assert refusal["reason"] == reason and words in refusal["message"]
        assert "edge.rules_max_range (6h)" in refusal["message"]
        assert running.bundles.status()["version"] == "v1"
        assert running.rules.window_ms == window and running.rules.evaluators == groups
    finally:
        running.stop()
    # A device that chose a longer window takes the same bundle.
    (tmp_path / "state").rename(tmp_path / "state-before")
    roomy = agent(tmp_path, rules_max_range="31d")
    try:
        assert roomy.bundles is not None and roomy.rules is not None
        assert roomy.bundles.offer(bundle(tmp_path, "v3", rules, thresholds),
                                   source="import") == "applied"
        assert roomy.rules.window_ms > 24 * 3_600_000
    finally:
        roomy.stop()


def test_a_bundle_s_query_window_is_bounded_by_the_same_key(tmp_path: Path) -> None:
    def windowed(version: str, window: str) -> bytes:
        src = tmp_path / f"src-{version}"
        (src / "rules").mkdir(parents=True)
        (src / "rules" / "fleet.yml").write_text(SHORT)
        (src / "bundle.yml").write_text(yaml.safe_dump(
            {"version": version, "rules": ["rules/*.yml"], "query_window": window}))
        return build_bundle(src)

    running = agent(tmp_path)
    try:
        assert running.bundles is not None and running.rules is not None
        assert running.bundles.offer(windowed("v1", "6h"), source="import") == "applied"
        assert running.bundles.offer(windowed("v2", "30d"), source="import") == "refused"
        refusal = running.bundles.status()["last_refusal"]
        assert refusal["reason"] == "config"
        assert "query_window 30d" in refusal["message"]
        assert "edge.rules_max_range (6h)" in refusal["message"]
        assert running.bundles.status()["version"] == "v1"
    finally:
        running.stop()
    # The device's own query_window wins over the bundle's: nothing to bound.
    (tmp_path / "state").rename(tmp_path / "state-before")
    own = agent(tmp_path, query_window="1h")
    try:
        assert own.bundles is not None
        assert own.bundles.offer(windowed("v3", "30d"), source="import") == "applied"
    finally:
        own.stop()
