"""Plugin manager and collector isolation: a broken plugin never breaks a scrape."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest
from prometheus_client import CollectorRegistry, generate_latest
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


BUILT_INS = {name for name, _ in plugin_manager.DEFAULT_PLUGINS}


def test_builtin_plugins_are_always_registered(fresh_plugins, registry):
    assert BUILT_INS <= set(plugin_manager.plugin_names())
    register_plugin_collectors(registry)
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "build_info"}) == 1


def _with_third_party(monkeypatch, *names):
    """Entry points of third-party plugins (this test module stands in for each)."""
    import importlib.metadata as md

    extra = [md.EntryPoint(name, __name__, "modelmon") for name in names]
    real = md.entry_points
    monkeypatch.setattr(plugin_manager.importlib.metadata, "entry_points",
                        lambda group: [*real(group=group), *extra])


@pytest.mark.parametrize("allow", ["", "build_info,system", "log_sinks", "site_a"])
def test_the_allow_list_filters_third_party_plugins_only(fresh_plugins, monkeypatch, registry,
                                                          allow):
    _with_third_party(monkeypatch, "site_a", "site_b")
    monkeypatch.setenv("MODELMON_PLUGINS", allow)
    plugin_manager.reset()
    names = set(plugin_manager.plugin_names())
    assert BUILT_INS <= names, "an allow-list must never remove a built-in plugin"
    assert ("site_a" in names) == (allow == "site_a")
    assert "site_b" not in names
    register_plugin_collectors(registry)
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "build_info"}) == 1


@pytest.mark.parametrize("allow", ["build_info,system", "log_sinks", ""])
def test_no_allow_list_loses_the_file_sink_or_redaction(fresh_plugins, monkeypatch, tmp_path,
                                                        allow):
    """The two reported failures: MODELMON_PLUGINS=build_info,system made the file
    sink unknown; MODELMON_PLUGINS=log_sinks shipped PII unredacted."""
    import json

    from modelmon.exporters.logs import LogShipper

    monkeypatch.setenv("MODELMON_PLUGINS", allow)
    plugin_manager.reset()
    out = tmp_path / "events.jsonl"
    shipper = LogShipper(sink="file", path=str(out), spool_dir=tmp_path / "spool",
                         registry=CollectorRegistry())
    try:
        shipper.emit({"message": "refund to jane.doe@example.com card 4111 1111 1111 1111"})
        assert shipper.flush(10)
    finally:
        shipper.close()
    message = json.loads(out.read_text().splitlines()[0])["message"]
    assert "jane.doe@example.com" not in message and "4111 1111 1111 1111" not in message, message


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
