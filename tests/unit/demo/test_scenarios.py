"""The scenarios' schedule, and that each expects alerts the generated rules have."""

from __future__ import annotations

import yaml

from modelmon.alerting import load_thresholds, rule_groups
from modelmon.demo.scenarios import DEVICES, SCENARIOS, live_schedule, state_at
from modelmon.demo.stack import DEMO_THRESHOLDS, EDGE_RULES, alertmanager_config
from modelmon.demo.traffic import Conditions


def test_every_expected_alert_is_a_generated_or_edge_rule() -> None:
    config = load_thresholds(DEMO_THRESHOLDS)
    names = {r["alert"] for g in rule_groups(config) for r in g["rules"] if "alert" in r}
    edge = yaml.safe_load(EDGE_RULES.read_text())
    edge_names = {r["alert"] for g in edge["groups"] for r in g["rules"] if "alert" in r}
    for scenario in SCENARIOS.values():
        for expected in scenario.alerts:
            # an alert that starts during an outage comes from the device's own rules
            known = edge_names if expected.starts_in_outage_of else names
            assert expected.alertname in known, (scenario.name, expected)
        if scenario.offline_edge_alert:
            assert scenario.offline_edge_alert in edge_names
        assert scenario.length < scenario.deadline
        assert scenario.alerts or scenario.series  # something to check


def test_the_demo_config_compresses_time_through_the_thresholds() -> None:
    config = load_thresholds(DEMO_THRESHOLDS)
    assert config.slo.page_windows == (("1m", "10s", 14.4),)
    assert config.quality.drift_windows == ("30s",)
    records = {r["record"] for g in rule_groups(config) for r in g["rules"] if "record" in r}
    assert "model:modelmon_inference_errors:ratio_rate10s" in records


def test_state_at_follows_the_steps() -> None:
    outage = SCENARIOS["edge-outage"]
    assert state_at(outage.steps, 5).cut == frozenset()
    during = state_at(outage.steps, 20)
    assert during.cut == {"edge-2"} and during.device_faults == {"edge-2": 0.7}
    assert state_at(outage.steps, 61).device_faults == {}
    errors = state_at(SCENARIOS["errors"].steps, 12)
    assert errors.conditions == Conditions(fault_rate=0.3) and "error burst 30%" in errors.labels


def test_the_live_loop_plays_every_scenario_without_overlap() -> None:
    steps, cycle = live_schedule()
    assert cycle > sum(s.length - min(x.at for x in s.steps) for s in SCENARIOS.values())
    cut = {s.cut_device for s in steps if s.cut_device}
    assert cut <= set(DEVICES) and cut
    kinds = [s for s in steps if s.conditions is not None]
    for a, b in zip(kinds, kinds[1:], strict=False):
        assert a.at + a.duration <= b.at


def test_alertmanager_routes_like_the_example_to_the_webhook() -> None:
    config = alertmanager_config("http://127.0.0.1:1")
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["pager"]["webhook_configs"][0]["url"] == "http://127.0.0.1:1/alerts/pager"
    assert all(h["send_resolved"] for r in receivers.values() for h in r.get("webhook_configs", []))
    assert [r["receiver"] for r in config["route"]["routes"]] == ["pager", "tickets", "blackhole"]
    assert config["inhibit_rules"]  # the example's inhibition is kept
