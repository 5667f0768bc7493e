"""Collectors a bundle replaces are closed (their close() or shutdown()), and
so are the ones built for a bundle that is then refused; the running ones are
not, until the agent stops."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from modelmon import hookimpl, hookspecs
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.bundles.format import build_bundle

EVENTS: list[tuple[str, str]] = []  # (what happened, collector setting "mode")


class _Held:
    """A collector holding something: closed with close()."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.mode = str(config.get("mode", "none"))
        self.closed = False

    def collect(self) -> Iterator[GaugeMetricFamily]:
        assert not self.closed, "collected after close()"
        family = GaugeMetricFamily("held_setting", "the setting it runs with", labels=["mode"])
        family.add_metric([self.mode], 1.0)
        yield family

    def close(self) -> None:
        self.closed = True
        EVENTS.append(("close", self.mode))


class _Pooled(_Held):
    """One with shutdown() instead (an executor's name for it)."""

    close = None  # type: ignore[assignment]

    def shutdown(self) -> None:
        EVENTS.append(("shutdown", self.mode))


class HeldPlugin:
    @hookimpl
    def modelmon_register_collectors(self, register: Any, config: dict[str, Any]) -> None:
        if config.get("mode") == "bad":
            raise ValueError("mode bad cannot run")
        register("held", _Held(config))
        register("pooled", _Pooled(config))


class OtherPlugin:  # a second plugin, broken by a setting only a bundle gives it
    @hookimpl
    def modelmon_register_collectors(self, register: Any, config: dict[str, Any]) -> None:
        if config.get("broken"):
            raise ValueError("cannot start")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[EdgeAgent]:
    EVENTS.clear()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(importlib.import_module("modelmon.plugins.system"), name="system")
    pm.register(HeldPlugin(), name="held")
    pm.register(OtherPlugin(), name="other")
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "listen": None, "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
        "bundle": {"allow_unsigned": True}}}, tmp_path)
    running = EdgeAgent(config, CollectorRegistry(), plugin_manager=pm)
    yield running
    running.stop()


def bundle(tmp_path: Path, version: str, **spec: Any) -> bytes:
    src = tmp_path / f"src-{version}"
    src.mkdir()
    (src / "bundle.yml").write_text(yaml.safe_dump({"version": version, **spec}))
    return build_bundle(src)


def modes(agent: EdgeAgent) -> set[str]:
    return {s.labels["mode"] for f in agent.view.collect() if f.name == "held_setting"
            for s in f.samples}


def test_replaced_and_refused_collectors_are_closed(tmp_path: Path, agent: EdgeAgent) -> None:
    assert agent.bundles is not None
    # Built at start for the registration, but not in the device's list: closed already.
    assert sorted(EVENTS) == [("close", "none"), ("shutdown", "none")]
    EVENTS.clear()
    both = ["held", "pooled"]
    assert agent.bundles.offer(bundle(tmp_path, "v1", collectors=both,
                                      plugins={"held": {"mode": "a"}}), source="import") \
        == "applied"
    assert modes(agent) == {"a"} and EVENTS == []  # the running ones stay open
    assert agent.bundles.offer(bundle(tmp_path, "v2", collectors=both,
                                      plugins={"held": {"mode": "b"}}), source="import") \
        == "applied"
    # v1's set is closed once v2's runs, each collector through what it has.
    assert modes(agent) == {"b"} and sorted(EVENTS) == [("close", "a"), ("shutdown", "a")]
    EVENTS.clear()
    # Refused after its collectors were built (a plugin broken by its settings, or a
    # collector this device lacks): they are closed, v2's keep running.
    for version, spec in (("v3", {"plugins": {"held": {"mode": "c"}, "other": {"broken": 1}}}),
                          ("v4", {"plugins": {"held": {"mode": "d"}}})):
        names = [*both, "other" if version == "v3" else "not-installed"]
        assert agent.bundles.offer(bundle(tmp_path, version, collectors=names, **spec),
                                   source="import") == "refused"
        assert agent.bundles.status()["last_refusal"]["reason"] == "collectors"
    assert sorted(EVENTS) == [("close", "c"), ("close", "d"), ("shutdown", "c"),
                              ("shutdown", "d")]
    assert modes(agent) == {"b"}
    EVENTS.clear()
    agent.stop()  # and the running set when the agent stops
    assert sorted(EVENTS) == [("close", "b"), ("shutdown", "b")]
    assert modes(agent) == set()  # a closed set collects nothing


def test_a_collector_failing_to_close_does_not_stop_the_swap(tmp_path: Path,
                                                            agent: EdgeAgent) -> None:
    assert agent.bundles is not None
    spec = {"collectors": ["held", "pooled"]}
    assert agent.bundles.offer(bundle(tmp_path, "v1", plugins={"held": {"mode": "a"}}, **spec),
                               source="import") == "applied"
    [held] = [c for c in agent.plugins.collectors.values() if type(c) is _Held]

    def refuse_to_close() -> None:
        raise OSError("socket already gone")

    held.close = refuse_to_close  # type: ignore[method-assign]
    assert agent.bundles.offer(bundle(tmp_path, "v2", plugins={"held": {"mode": "b"}}, **spec),
                               source="import") == "applied"
    assert modes(agent) == {"b"} and ("shutdown", "a") in EVENTS
