"""Plugin manager and collector isolation: a broken plugin never breaks a scrape."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily

from modelmon import hookimpl, hookspecs, plugin_manager
from modelmon.collectors import PluginCollectors, register_plugin_collectors

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


class Good:
    def collect(self):
        g = GaugeMetricFamily("site_widget_temperature_celsius", "t", labels=["chip"])
        g.add_metric(["0"], 41.5)
        yield g


class Broken:
    def collect(self):
        yield GaugeMetricFamily("site_half_done", "h", value=1)
        raise OSError("sensor unplugged")


class SitePlugin:
    @hookimpl
    def modelmon_register_collectors(self, register, config):
        register("good", Good())
        register("broken", Broken())


@pytest.fixture
def pm():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(SitePlugin(), name="site")
    yield manager
    manager.unregister(name="site")


def test_a_failing_collector_is_isolated_and_reported(pm, registry):
    registry.register(PluginCollectors(pm=pm))
    text = generate_latest(registry).decode()  # must not raise
    assert registry.get_sample_value("site_widget_temperature_celsius", {"chip": "0"}) == 41.5
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "good"}) == 1
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "broken"}) == 0
    assert "site_half_done" not in text, "a failing collector's partial output is left out"
    assert registry.get_sample_value("modelmon_collector_duration_seconds", {"collector": "good"}) >= 0


def test_a_plugin_that_raises_while_registering_is_reported(registry):
    class Exploding:
        @hookimpl
        def modelmon_register_collectors(self, register):
            raise RuntimeError("no device")

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(Exploding(), name="exploding")
    registry.register(PluginCollectors(pm=manager))
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "exploding"}) == 0


def test_duplicate_collector_names_are_refused(registry):
    class Twice:
        @hookimpl
        def modelmon_register_collectors(self, register):
            register("x", Good())
            register("x", Good())

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(Twice(), name="twice")
    collectors = PluginCollectors(pm=manager)
    assert "must be unique" in collectors.broken["twice"]


def test_builtin_plugins_load_through_entry_points(fresh_plugins, registry):
    assert "build_info" in plugin_manager.plugin_names()
    register_plugin_collectors(registry)
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "build_info"}) == 1


def test_allow_list(fresh_plugins, monkeypatch, registry):
    monkeypatch.setenv("MODELMON_PLUGINS", "")
    plugin_manager.reset()
    assert plugin_manager.plugin_names() == []
    register_plugin_collectors(registry)
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "build_info"}) is None


def test_import_failure_is_reported_not_raised(fresh_plugins, monkeypatch, registry):
    import importlib.metadata as md

    broken = md.EntryPoint("broken_plugin", "modelmon_no_such_module_xyz", "modelmon")
    real = md.entry_points
    monkeypatch.setattr(
        plugin_manager.importlib.metadata, "entry_points",
        lambda group: [*real(group=group), broken],
    )
    plugin_manager.reset()
    assert "broken_plugin" in plugin_manager.load_failures()
    register_plugin_collectors(registry)
    assert registry.get_sample_value("modelmon_collector_success",
                                     {"collector": "broken_plugin"}) == 0


def test_misspelled_hook_fails_loudly():
    class Typo:
        @hookimpl
        def modelmon_register_colectors(self, register):
            pass

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        manager.check_pending()


def _hookspecs():
    return [(name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("modelmon_")]


def test_every_hook_and_argument_is_documented():
    docs = DOCS.read_text()
    assert _hookspecs(), "no hooks found"
    for name, fn in _hookspecs():
        section = re.search(rf"^### {name}\n(.*?)(?=^### |\Z)", docs, re.S | re.M)
        assert section, f"docs/plugins.md has no '### {name}' section"
        for arg in inspect.signature(fn).parameters:
            assert f"`{arg}`" in section.group(1), f"{name}: argument {arg} undocumented"
        assert fn.__doc__ and ":param" in fn.__doc__, f"{name} has no :param: docstring"
