"""Built-in plugin: the ``system`` collector, device health through psutil.

CPU, load, memory, filesystems, network and (where the OS exposes them)
temperatures, as ``modelmon_system_*`` gauges and counters labelled by
``device``. The edge agent enables it with ``collectors: [system]``; any
process that loads plugins can export it.

Plugin settings (``plugins.system`` in the config file; the edge agent fills
``device`` with its ``device_id``)::

    device: press-line-7      # default: the host name
    mountpoints: ["/"]        # filesystems to report (default: "/")
    interfaces: []            # network interfaces; default: all but loopback, at most 16
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psutil
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmon.catalog import by_name
from modelmon.hookspecs import RegisterCollector, hookimpl
from modelmon.kpi import DEFAULT_PREFIX

MAX_INTERFACES = 16
MAX_SENSORS = 32


class SystemCollector:
    """Collects device metrics on each call; each part is skipped where unsupported."""

    def __init__(
        self,
        device: str,
        prefix: str = DEFAULT_PREFIX,
        mountpoints: Sequence[str] = ("/",),
        interfaces: Sequence[str] | None = None,
    ) -> None:
        self.device = device
        self.prefix = prefix
        self.mountpoints = tuple(mountpoints)
        self.interfaces = tuple(interfaces) if interfaces else None
        self._lock = threading.Lock()
        self._last_cpu = psutil.cpu_times()

    def _gauge(self, name: str, extra_labels: Sequence[str] = ()) -> GaugeMetricFamily:
        kpi = by_name(name)
        return GaugeMetricFamily(kpi.full_name(self.prefix), kpi.help, labels=["device", *extra_labels])

    def collect(self) -> Iterator[Metric]:
        d = self.device
        cpu = self._gauge("system_cpu_utilization_ratio")
        with self._lock:  # two scrapes at once would share one delta
            now = psutil.cpu_times()
            busy, total = _cpu_delta(self._last_cpu, now)
            self._last_cpu = now
        if total > 0:
            cpu.add_metric([d], min(1.0, max(0.0, busy / total)))
        yield cpu

        count = self._gauge("system_logical_cpus")
        count.add_metric([d], float(psutil.cpu_count() or 1))
        yield count

        if hasattr(os, "getloadavg"):
            load = self._gauge("system_load_average", ["period"])
            for period, value in zip(("1m", "5m", "15m"), os.getloadavg(), strict=True):
                load.add_metric([d, period], value)
            yield load

        vm = psutil.virtual_memory()
        memory = self._gauge("system_memory_bytes", ["state"])
        memory.add_metric([d, "total"], float(vm.total))
        memory.add_metric([d, "available"], float(vm.available))
        memory.add_metric([d, "used"], float(vm.total - vm.available))
        yield memory

        fs = self._gauge("system_filesystem_bytes", ["mountpoint", "state"])
        for mountpoint in self.mountpoints:
            try:
                usage = psutil.disk_usage(mountpoint)
            except OSError:
                continue  # unmounted media: absent rather than failing the collector
            fs.add_metric([d, mountpoint, "total"], float(usage.total))
            fs.add_metric([d, mountpoint, "free"], float(usage.free))
            fs.add_metric([d, mountpoint, "used"], float(usage.used))
        yield fs

        kpi = by_name("system_network_bytes_total")
        net = CounterMetricFamily(
            kpi.full_name(self.prefix).removesuffix("_total"), kpi.help,
            labels=["device", "interface", "direction"],
        )
        counters = psutil.net_io_counters(pernic=True)
        names = self.interfaces or sorted(n for n in counters if n != "lo")[:MAX_INTERFACES]
        for name in names:
            io = counters.get(name)
            if io is not None:
                net.add_metric([d, name, "receive"], float(io.bytes_recv))
                net.add_metric([d, name, "transmit"], float(io.bytes_sent))
        yield net

        sensors = getattr(psutil, "sensors_temperatures", None)
        readings: dict[str, Any] = sensors() if sensors is not None else {}
        temperature = self._gauge("system_temperature_celsius", ["sensor"])
        emitted = 0
        for chip, entries in sorted(readings.items()):
            for index, entry in enumerate(entries):
                if emitted >= MAX_SENSORS:
                    break
                sensor = f"{chip}_{entry.label or index}".replace(" ", "_")
                temperature.add_metric([d, sensor], float(entry.current))
                emitted += 1
        yield temperature


def _cpu_delta(before: Any, after: Any) -> tuple[float, float]:
    idle_fields = ("idle", "iowait")
    total = sum(after) - sum(before)
    idle = sum(getattr(after, f, 0.0) - getattr(before, f, 0.0) for f in idle_fields)
    return total - idle, total


def from_config(config: Mapping[str, Any]) -> SystemCollector:
    unknown = set(config) - {"prefix", "device", "mountpoints", "interfaces"}
    if unknown:
        raise ValueError(
            f"plugins.system: unknown key(s) {', '.join(sorted(unknown))}; known: device, "
            "mountpoints, interfaces"
        )
    mountpoints = config.get("mountpoints", ["/"])
    interfaces = config.get("interfaces")
    for key, value in (("mountpoints", mountpoints), ("interfaces", interfaces or [])):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"plugins.system.{key}: expected a list of names, got {value!r}")
    return SystemCollector(
        device=str(config.get("device") or socket.gethostname()),
        prefix=str(config.get("prefix", DEFAULT_PREFIX)),
        mountpoints=mountpoints,
        interfaces=interfaces,
    )


@hookimpl
def modelmon_register_collectors(register: RegisterCollector, config: Mapping[str, Any]) -> None:
    register("system", from_config(config))
