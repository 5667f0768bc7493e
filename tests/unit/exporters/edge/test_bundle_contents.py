"""What a bundle carries besides rule files: thresholds, reference profiles and
collector settings. Built, read back, applied to a running agent (which then
uses them), refused with a reason when bad (the last known good keeps
running), and the device's own config winning; each apply and refusal is an
ECS event."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from modelmon import ModelMonitor, Profile, hookimpl, hookspecs
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.bundles.format import (
    MANIFEST,
    BundleRefused,
    _tar,
    build_bundle,
    read_bundle,
)
from modelmon.exporters.edge.status import render

RULES = "groups: [{name: fleet, rules: [{record: 'device:up', expr: vector(1)}]}]\n"


def profile(columns: dict[str, Any], model: str = "fraud") -> dict[str, Any]:
    names = list(columns)
    return Profile.from_data(np.column_stack([columns[n] for n in names]), feature_names=names,
                             model=model).to_dict()


REFERENCE = profile({"amount": np.arange(200.0), "age": np.arange(200.0) % 60})
RETRAINED = profile({"amount": np.arange(200.0) * 10, "tenure": np.arange(200.0)})


def source(tmp_path: Path, version: str, spec: dict[str, Any],
           files: dict[str, str] | None = None) -> Path:
    src = tmp_path / f"src-{version}"
    (src / "rules").mkdir(parents=True)
    (src / "rules" / "fleet.yml").write_text(RULES)
    for name, text in (files or {}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    (src / "bundle.yml").write_text(yaml.safe_dump(
        {"version": version, "rules": ["rules/*.yml"], **spec}))
    return src


def full_source(tmp_path: Path, version: str = "v1",
                thresholds: str = "slo: {availability_target: 0.99}\n",
                prof: dict[str, Any] = REFERENCE) -> Path:
    return source(tmp_path, version, {
        "thresholds": "thresholds.yml", "profiles": {"fraud": "profiles/fraud.json"},
        "collectors": ["probe"], "plugins": {"probe": {"value": 2, "mode": "fleet"}},
    }, {"thresholds.yml": thresholds, "profiles/fraud.json": json.dumps(prof)})


def tampered(data: bytes, name: str, body: bytes) -> bytes:
    """``data`` with member ``name`` replaced and the manifest's hash updated (unsigned)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    manifest = json.loads(members[MANIFEST])
    manifest["files"][name] = hashlib.sha256(body).hexdigest()
    members[name] = body
    members[MANIFEST] = json.dumps(manifest).encode()
    return _tar(members)


def edited_manifest(data: bytes, **changes: Any) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    members[MANIFEST] = json.dumps({**json.loads(members[MANIFEST]), **changes}).encode()
    return _tar(members)


# -- the format ----------------------------------------------------------------


def test_thresholds_profiles_and_collector_settings_read_back_as_built(tmp_path: Path) -> None:
    bundle = read_bundle(build_bundle(full_source(tmp_path)), None, require_signature=False)
    assert bundle.thresholds is not None and bundle.thresholds.slo.availability_target == 0.99
    # The thresholds regenerate the catalog's edge rule group, as `modelmon rules build` does.
    [group] = bundle.threshold_groups
    assert group.name == "modelmon.edge.device" and group.file == "bundle:thresholds"
    exprs = " ".join(r.query.text for r in group.rules)
    assert "0.01)" in exprs and "0.001)" not in exprs
    assert [g.name for g in bundle.rule_groups] == ["fleet"]  # thresholds are not a rule file
    sha, prof = bundle.profiles["fraud"]
    assert prof.feature_names == ("amount", "age") and len(sha) == 64
    assert bundle.collectors == ("probe",)
    assert bundle.plugins == {"probe": {"value": 2, "mode": "fleet"}}


@pytest.mark.parametrize(("member", "body", "reason", "words"), [
    ("thresholds.yml", b"slo: {availability_target: 7}\n", "thresholds",
     "slo.availability_target"),
    ("thresholds.yml", b"slo: [unclosed\n", "thresholds", "not YAML"),
    ("thresholds.yml", b"quality: {no_such_key: 1}\n", "thresholds", "no_such_key"),
    ("thresholds.yml", b"evaluation_interval: .inf\n", "thresholds", "evaluation_interval"),
    ("thresholds.yml", b"slo: {page_for: 1.0e+308}\n", "thresholds", "slo.page_for"),
    ("profiles/fraud.json", b"{not json", "profiles", "not a JSON profile"),
    ("profiles/fraud.json", json.dumps({"format": "modelmon-profile", "format_version": 9,
                                        "features": []}).encode(), "profiles", "format_version"),
    ("profiles/fraud.json", json.dumps(profile({"x": np.arange(50.0)}, model="other")).encode(),
     "profiles", "profile of model 'other'"),
    ("profiles/fraud.json", json.dumps({**REFERENCE, "rows": [1]}).encode(), "profiles", "rows"),
    ("profiles/fraud.json", json.dumps({**REFERENCE, "rows": 1e999}).encode(), "profiles", "rows"),
])
def test_bad_content_is_refused_with_its_reason(tmp_path: Path, member: str, body: bytes,
                                                reason: str, words: str) -> None:
    data = tampered(build_bundle(full_source(tmp_path)), member, body)
    with pytest.raises(BundleRefused) as caught:
        read_bundle(data, None, require_signature=False)
    assert caught.value.reason == reason and words in str(caught.value)


@pytest.mark.parametrize(("changes", "words"), [
    ({"collectors": "probe"}, "collectors: expected a list"),
    ({"collectors": ["no spaces allowed"]}, "collectors: expected a list"),
    ({"plugins": {"probe": "url"}}, "plugins: expected a mapping"),
])
def test_bad_collector_settings_are_refused(tmp_path: Path, changes: dict[str, Any],
                                            words: str) -> None:
    data = edited_manifest(build_bundle(full_source(tmp_path)), **changes)
    with pytest.raises(BundleRefused) as caught:
        read_bundle(data, None, require_signature=False)
    assert caught.value.reason == "collectors" and words in str(caught.value)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"thresholds": {"a": 1}}, "thresholds"), ({"thresholds": "absent.yml"}, "thresholds"),
    ({"profiles": {"fraud": ["x"]}}, "profiles"), ({"profiles": ["fraud"]}, "profiles"),
])
def test_a_manifest_naming_files_wrongly_is_refused(tmp_path: Path, changes: dict[str, Any],
                                                    reason: str) -> None:
    data = edited_manifest(build_bundle(full_source(tmp_path)), **changes)
    with pytest.raises(BundleRefused) as caught:
        read_bundle(data, None, require_signature=False)
    assert caught.value.reason == reason


def test_a_rule_file_group_named_like_the_generated_one_is_refused(tmp_path: Path) -> None:
    src = full_source(tmp_path)
    (src / "rules" / "dup.yml").write_text(
        "groups: [{name: modelmon.edge.device, rules: [{record: 'x', expr: vector(1)}]}]\n")
    with pytest.raises(ValueError, match="both in a rule file and generated from thresholds"):
        build_bundle(src)


def test_build_refuses_a_bad_source_before_any_device_sees_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="slo.availability_target"):
        build_bundle(full_source(tmp_path, thresholds="slo: {availability_target: 2}\n"))
    with pytest.raises(ValueError, match="profiles"):
        build_bundle(source(tmp_path, "v9", {"profiles": {"fraud": "missing.json"}}))


def test_inspect_shows_what_the_bundle_carries(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(build_bundle(full_source(tmp_path)))
    out = subprocess.run([sys.executable, "-m", "modelmon", "edge", "bundle", "inspect",
                          str(path)], capture_output=True, text=True, check=True).stdout
    assert "thresholds: yes; generates modelmon.edge.device" in out
    assert "profile:  fraud (2 features" in out
    assert "collectors: probe" in out and "plugin:   probe: mode, value" in out


# -- on a running agent --------------------------------------------------------


class _Probe:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("probe_setting", "the settings this collector runs with",
                                   labels=["mode"])
        family.add_metric([str(self.config.get("mode", "none"))], float(self.config["value"]))
        yield family


class ProbePlugin:
    @hookimpl
    def modelmon_register_collectors(self, register: Any, config: dict[str, Any]) -> None:
        if config.get("value") == "bad":
            raise ValueError("value must be a number")
        register("probe", _Probe({"value": 0, **config}))


@pytest.fixture
def pm() -> Iterator[pluggy.PluginManager]:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(importlib.import_module("modelmon.plugins.system"), name="system")
    manager.register(ProbePlugin(), name="probe")
    yield manager


def make_agent(tmp_path: Path, pm: pluggy.PluginManager, **edge: Any) -> EdgeAgent:
    config = edge_config_from_mapping({
        "logs": {"sink": "file", "spool_dir": str(tmp_path / "log-spool"),
                 "file": {"path": str(tmp_path / "events.jsonl")}},
        "plugins": edge.pop("plugins", {}),
        "edge": {
            "device_id": "press-7", "listen": None,
            "spool": {"path": str(tmp_path / "state")},
            "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
            "bundle": {"allow_unsigned": True}, **edge,
        },
    }, tmp_path)
    return EdgeAgent(config, CollectorRegistry(), plugin_manager=pm)


def probe_values(agent: EdgeAgent) -> dict[str, float]:
    return {s.labels["mode"]: s.value for f in agent.view.collect() if f.name == "probe_setting"
            for s in f.samples}


def collectors_running(agent: EdgeAgent) -> set[str]:
    return {s.labels["collector"] for f in agent.view.collect()
            if f.name == "modelmon_collector_success" for s in f.samples}


def generated_exprs(agent: EdgeAgent) -> str:
    assert agent.rules is not None
    return " ".join(r.query.text for e in agent.rules.evaluators
                    if e.group.name == "modelmon.edge.device" for r in e.group.rules)


def events(tmp_path: Path, agent: EdgeAgent) -> list[dict[str, Any]]:
    assert agent.logs is not None and agent.logs.flush(10)
    path = tmp_path / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_applied_bundle_runs_its_thresholds_profile_and_collectors(
        tmp_path: Path, pm: pluggy.PluginManager) -> None:
    agent = make_agent(tmp_path, pm)
    try:
        monitor = ModelMonitor("fraud", "3.1", registry=agent.registry, profile=REFERENCE,
                               quality_options={"feedback_db": ":memory:"})
        agent.attach_monitor(monitor)
        assert collectors_running(agent) == {"system"} and generated_exprs(agent) == ""
        assert agent.bundles is not None
        assert agent.bundles.offer(build_bundle(full_source(tmp_path)), source="import") \
            == "applied"
        # Thresholds: the edge rule group, generated from them, runs.
        assert "(14.4 * 0.01)" in generated_exprs(agent)
        # Collectors: the bundle's list (the device config sets none) with its settings.
        assert collectors_running(agent) == {"probe"}
        assert probe_values(agent) == {"fleet": 2.0}
        # Profiles: the attached monitor already measured against the bundle's (same) one.
        assert monitor.quality.profile is not None
        assert monitor.quality.profile.feature_names == ("amount", "age")

        retrained = full_source(tmp_path, "v2", thresholds="slo: {availability_target: 0.95}\n",
                                prof=RETRAINED)
        before = monitor.quality
        assert agent.bundles.offer(build_bundle(retrained), source="import") == "applied"
        assert "(14.4 * 0.05)" in generated_exprs(agent)
        assert monitor.quality is not before  # one swap: a new tracker on the new profile
        assert monitor.quality.profile is not None
        assert monitor.quality.profile.feature_names == ("amount", "tenure")
        monitor.check_inputs({"amount": 5.0, "tenure": 3.0})
        assert agent.registry.get_sample_value(
            "modelmon_drift_window_rows", {"model": "fraud", "version": "3.1"}) == 1.0
        assert agent.status()["bundle"]["profiles"] == ["fraud"]
        assert "bundle has:    thresholds; profiles of fraud; collectors probe" in render(
            agent.status())
        found = events(tmp_path, agent)
    finally:
        agent.stop()
    applied = [e for e in found if e["event"]["action"] == "edge-bundle-applied"]
    assert [e["model"]["edge"]["bundle"]["version"] for e in applied] == ["v1", "v2"]
    assert applied[1]["model"]["edge"]["bundle"]["previous_version"] == "v1"
    assert applied[1]["event"]["outcome"] == "success"
    assert applied[1]["model"]["edge"]["bundle"]["sha256"] == agent.bundles.status()["sha256"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"thresholds": "slo: {availability_target: 1.5}\n"}, "thresholds"),
    ({"prof": {"format": "modelmon-profile", "format_version": 1, "features": "none"}},
     "profiles"),
    ({"collectors": ["not-installed"]}, "collectors"),
    ({"plugins": {"probe": {"value": "bad"}}}, "collectors"),
])
def test_a_refused_bundle_leaves_the_last_known_good_running(
        tmp_path: Path, pm: pluggy.PluginManager, change: dict[str, Any], reason: str) -> None:
    agent = make_agent(tmp_path, pm)
    try:
        monitor = ModelMonitor("fraud", "3.1", registry=agent.registry,
                               quality_options={"feedback_db": ":memory:"})
        agent.attach_monitor(monitor)
        assert agent.bundles is not None
        good = read_bundle(build_bundle(full_source(tmp_path)), None, require_signature=False)
        assert agent.bundles.offer(good.data, source="import") == "applied"
        tracker = monitor.quality
        bad = build_bundle(full_source(tmp_path, "v2"))
        if "thresholds" in change:
            bad = tampered(bad, "thresholds.yml", change["thresholds"].encode())
        elif "prof" in change:
            bad = tampered(bad, "profiles/fraud.json", json.dumps(change["prof"]).encode())
        else:
            bad = edited_manifest(bad, **change)
        assert agent.bundles.offer(bad, source="import") == "refused"
        status = agent.bundles.status()
        assert status["version"] == "v1" and status["last_refusal"]["reason"] == reason
        assert agent.registry.get_sample_value("modelmon_edge_bundles_refused_total",
                                               {"device": "press-7", "reason": reason}) == 1
        # Everything of v1 still runs: thresholds, collectors and their settings, profile.
        assert "(14.4 * 0.01)" in generated_exprs(agent)
        assert probe_values(agent) == {"fleet": 2.0}
        assert monitor.quality is tracker
        found = events(tmp_path, agent)
    finally:
        agent.stop()
    [refused] = [e for e in found if e["event"]["action"] == "edge-bundle-refused"]
    assert refused["event"]["reason"] == reason and refused["event"]["outcome"] == "failure"
    assert refused["log"]["level"] == "error" and refused["error"]["message"]
    bundle = refused["model"]["edge"]["bundle"]
    assert (bundle["version"], bundle["running_version"]) == ("v2", "v1")
    assert bundle["running_sha256"] == good.sha256 and bundle["source"] == "import"


def test_the_devices_own_collectors_and_settings_win(tmp_path: Path,
                                                    pm: pluggy.PluginManager) -> None:
    agent = make_agent(tmp_path, pm, collectors=["probe"],
                       plugins={"probe": {"value": 7}})
    try:
        assert agent.bundles is not None
        spec = {"collectors": ["system"], "plugins": {"probe": {"value": 2, "mode": "fleet"}}}
        assert agent.bundles.offer(build_bundle(source(tmp_path, "v1", spec)),
                                   source="import") == "applied"
        # Its collectors: list wins; per setting, its value wins and the bundle fills the rest.
        assert collectors_running(agent) == {"probe"}
        assert probe_values(agent) == {"fleet": 7.0}
    finally:
        agent.stop()


def test_the_devices_own_rule_group_wins_over_the_generated_one(
        tmp_path: Path, pm: pluggy.PluginManager) -> None:
    own = tmp_path / "own.yml"
    own.write_text("groups: [{name: modelmon.edge.device, rules: [{record: mine, "
                   "expr: vector(2)}]}]\n")
    agent = make_agent(tmp_path, pm, rules=[str(own)])
    try:
        assert agent.bundles is not None
        assert agent.bundles.offer(build_bundle(full_source(tmp_path)),
                                   source="import") == "applied"
        assert generated_exprs(agent) == "vector(2)"
    finally:
        agent.stop()


def test_the_stored_bundle_is_applied_again_at_start_and_logged(
        tmp_path: Path, pm: pluggy.PluginManager) -> None:
    agent = make_agent(tmp_path, pm)
    assert agent.bundles is not None
    agent.bundles.offer(build_bundle(full_source(tmp_path)), source="import")
    agent.stop()
    again = make_agent(tmp_path, pm)
    try:
        assert "(14.4 * 0.01)" in generated_exprs(again)
        assert probe_values(again) == {"fleet": 2.0}
        found = events(tmp_path, again)
    finally:
        again.stop()
    assert [e["model"]["edge"]["bundle"]["source"] for e in found
            if e["event"]["action"] == "edge-bundle-applied"] == ["import", "restored (import)"]


def test_use_profile_with_a_bad_profile_changes_nothing() -> None:
    from modelmon.exporters.quality.profile import ProfileError

    monitor = ModelMonitor("fraud", "3.1", registry=CollectorRegistry(), profile=REFERENCE,
                           quality_options={"feedback_db": ":memory:"})
    tracker = monitor.quality
    with pytest.raises(ProfileError):
        monitor.use_profile({"format": "modelmon-profile", "format_version": 1, "features": 3})
    assert monitor.quality is tracker
    monitor.use_profile(RETRAINED)
    assert monitor.quality is not tracker
    assert monitor.quality.profile is not None
    assert monitor.quality.profile.feature_names == ("amount", "tenure")


def test_a_prediction_recorded_on_the_replaced_tracker_still_meets_its_label(
        tmp_path: Path) -> None:
    # A request read monitor.quality just before a bundle swapped the profile and
    # records its prediction on the old tracker afterwards: its late label must
    # still join (the feedback store is the old and new trackers' shared file).
    registry = CollectorRegistry()
    monitor = ModelMonitor("fraud", "3.1", registry=registry, profile=REFERENCE,
                           quality_options={"feedback_db": str(tmp_path / "feedback.db")})
    in_flight = monitor.quality
    monitor.use_profile(RETRAINED)
    in_flight.record_predictions(["fraud"], request_ids=["r-1"])
    in_flight.flush()  # its worker's next round, still running in the grace period
    monitor.record_feedback("r-1", "fraud")
    monitor.quality.flush()
    matched = registry.get_sample_value("modelmon_feedback_total", {
        "model": "fraud", "version": "3.1", "outcome": "correct"})
    assert matched == 1.0
    monitor.close()  # closes the replaced tracker too, before its grace ends
    assert in_flight._closed
