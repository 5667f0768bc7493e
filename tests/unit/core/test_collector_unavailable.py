"""A collector that raises CollectorUnavailable (no GPU, no Docker daemon) reports
success 0 and is logged once per message, not on every scrape."""

from __future__ import annotations

import logging

import pluggy
import pytest
from prometheus_client import generate_latest

from modelmon import hookimpl, hookspecs
from modelmon.collectors import PluginCollectors
from modelmon.hookspecs import CollectorUnavailable


class Flaky:
    def __init__(self) -> None:
        self.message: str | None = "no device: set plugins.gpu.index"

    def collect(self):
        if self.message is not None:
            raise CollectorUnavailable(self.message)
        return []


@pytest.fixture
def flaky():
    collector = Flaky()

    class Plugin:
        @hookimpl
        def modelmon_register_collectors(self, register, config):
            register("gpu", collector)

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(Plugin(), name="gpu_plugin")
    return collector, pm


def test_unavailable_is_success_0_and_logged_once_per_message(flaky, registry, caplog):
    collector, pm = flaky
    registry.register(PluginCollectors(pm=pm))
    with caplog.at_level(logging.WARNING, logger="modelmon.collectors"):
        for _ in range(3):
            generate_latest(registry)
        assert registry.get_sample_value("modelmon_collector_success", {"collector": "gpu"}) == 0
        assert [r.getMessage() for r in caplog.records] == [
            "collector 'gpu' unavailable: no device: set plugins.gpu.index"]
        assert all(r.exc_info is None for r in caplog.records), "a state, not a traceback"

        collector.message = "driver gone"
        generate_latest(registry)
        assert len(caplog.records) == 2, "a new reason is logged"

        collector.message = None
        generate_latest(registry)
        assert registry.get_sample_value("modelmon_collector_success", {"collector": "gpu"}) == 1
        collector.message = "driver gone"
        generate_latest(registry)
        assert len(caplog.records) == 3, "unavailable again after recovering is news again"
