"""Built-in plugin: ``modelmon_build_info``, which modelmon a target runs."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from modelmon.catalog import by_name
from modelmon.hookspecs import RegisterCollector, hookimpl
from modelmon.kpi import DEFAULT_PREFIX


class BuildInfoCollector:
    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        kpi = by_name("build_info")
        self._name = kpi.full_name(prefix)
        self._help = kpi.help
        self._values = [
            importlib.metadata.version("modelmon"),
            platform.python_version(),
            importlib.metadata.version("prometheus-client"),
        ]
        self._labels = list(kpi.labels)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._help, labels=self._labels)
        family.add_metric(self._values, 1.0)
        yield family


@hookimpl
def modelmon_register_collectors(register: RegisterCollector, config: Mapping[str, Any]) -> None:
    register("build_info", BuildInfoCollector(str(config.get("prefix", DEFAULT_PREFIX))))
