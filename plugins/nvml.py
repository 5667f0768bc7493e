"""Built-in plugin: the ``nvml`` collector, NVIDIA GPUs through NVML.

Utilization, memory used and total, temperature, power, ECC errors and the
GPU memory of compute processes summed per Docker container (catalog group
``gpu``), read with ``nvidia-ml-py`` (``pip install 'modelmon[gpu]'``).

Plugin settings (``plugins.nvml`` in the config file)::

    enabled: auto      # true, false; auto: where the NVIDIA driver answers
    max_gpus: 16       # GPUs reported, at most
    max_containers: 32 # per-container memory series per GPU, at most

With ``enabled: auto`` (the default) the collector is registered only where
``nvidia-ml-py`` is installed and NVML starts (a driver and a GPU), so a host
without a GPU shows no failing collector. With ``enabled: true`` it is always
registered: without a GPU it reports itself absent, once in the log, and
``modelmon_collector_success{collector="nvml"}`` is 0.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmon.catalog import by_name
from modelmon.hookspecs import CollectorUnavailable, RegisterCollector, hookimpl
from modelmon.kpi import DEFAULT_PREFIX

DEFAULT_MAX_GPUS = 16
DEFAULT_MAX_CONTAINERS = 32
_KEYS = {"prefix", "enabled", "max_gpus", "max_containers"}
# A Docker container's id in a cgroup path: /docker/<id>, docker-<id>.scope, cri-containerd-<id>.
_CONTAINER_ID = re.compile(r"(?:docker|containerd|crio)[-/]([0-9a-f]{64})")


class NvmlUnavailable(CollectorUnavailable):
    pass


class NvmlCollector:
    """Reads every GPU NVML sees on each ``collect()``; starts NVML on first use."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, max_gpus: int = DEFAULT_MAX_GPUS,
                 max_containers: int = DEFAULT_MAX_CONTAINERS, proc: Path = Path("/proc")) -> None:
        self.prefix = prefix
        self.max_gpus = max_gpus
        self.max_containers = max_containers
        self.proc = proc
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start NVML; NvmlUnavailable names what is missing."""
        try:
            import pynvml
        except ImportError:
            raise NvmlUnavailable(
                "nvidia-ml-py is not installed: pip install 'modelmon[gpu]', or set "
                "plugins.nvml.enabled: false") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(
                f"no NVIDIA GPU or driver here (NVML: {exc}); set plugins.nvml.enabled: false "
                "on hosts without one") from None
        self._started = True

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if not self._started:
                self.start()
            import pynvml

            try:
                families = self._read(pynvml)
            except pynvml.NVMLError as exc:
                self._started = False  # the driver went away (reset, upgrade): start again
                raise NvmlUnavailable(f"NVML stopped answering: {exc}") from None
        yield from families

    def _gauge(self, name: str, *labels: str) -> GaugeMetricFamily:
        kpi = by_name(name)
        return GaugeMetricFamily(kpi.full_name(self.prefix), kpi.help, labels=list(labels))

    def _read(self, nv: Any) -> list[Metric]:
        info = self._gauge("gpu_info", "gpu", "name", "uuid")
        utilization = self._gauge("gpu_utilization_ratio", "gpu")
        used = self._gauge("gpu_memory_used_bytes", "gpu")
        total = self._gauge("gpu_memory_total_bytes", "gpu")
        temperature = self._gauge("gpu_temperature_celsius", "gpu")
        power = self._gauge("gpu_power_watts", "gpu")
        kpi = by_name("gpu_ecc_errors_total")
        ecc = CounterMetricFamily(kpi.full_name(self.prefix).removesuffix("_total"), kpi.help,
                                  labels=["gpu", "type"])
        processes = self._gauge("gpu_process_memory_bytes", "gpu", "container_id")
        for index in range(min(nv.nvmlDeviceGetCount(), self.max_gpus)):
            gpu = str(index)
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            info.add_metric([gpu, _text(nv.nvmlDeviceGetName(handle)),
                             _text(nv.nvmlDeviceGetUUID(handle))], 1.0)
            memory = nv.nvmlDeviceGetMemoryInfo(handle)
            used.add_metric([gpu], float(memory.used))
            total.add_metric([gpu], float(memory.total))
            # Each reading below is missing on some cards (NVMLError_NotSupported): left out.
            rates = _optional(nv, nv.nvmlDeviceGetUtilizationRates, handle)
            if rates is not None:
                utilization.add_metric([gpu], rates.gpu / 100.0)
            celsius = _optional(nv, nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)
            if celsius is not None:
                temperature.add_metric([gpu], float(celsius))
            milliwatts = _optional(nv, nv.nvmlDeviceGetPowerUsage, handle)
            if milliwatts is not None:
                power.add_metric([gpu], milliwatts / 1000.0)
            for kind, bit in (("corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                              ("uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)):
                count = _optional(nv, nv.nvmlDeviceGetTotalEccErrors, handle, bit,
                                  nv.NVML_AGGREGATE_ECC)
                if count is not None:
                    ecc.add_metric([gpu, kind], float(count))
            running = _optional(nv, nv.nvmlDeviceGetComputeRunningProcesses, handle) or []
            for container, memory_bytes in self._per_container(running).items():
                processes.add_metric([gpu, container], memory_bytes)
        return [info, utilization, used, total, temperature, power, ecc, processes]

    def _per_container(self, running: list[Any]) -> dict[str, float]:
        sums: dict[str, float] = {}
        for process in running:
            container = container_id(int(process.pid), self.proc)
            if container not in sums and len(sums) >= self.max_containers:
                continue
            sums[container] = sums.get(container, 0.0) + float(process.usedGpuMemory or 0)
        return sums


def container_id(pid: int, proc: Path = Path("/proc")) -> str:
    """The short Docker (or containerd/CRI-O) id of ``pid``'s container, "" when none."""
    try:
        cgroups = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return ""  # gone, or another PID namespace
    match = _CONTAINER_ID.search(cgroups)
    return match.group(1)[:12] if match else ""


def _optional(nv: Any, read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except nv.NVMLError_NotSupported:
        return None


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def from_config(config: Mapping[str, Any]) -> NvmlCollector | None:
    """The collector for ``plugins.nvml``, or None where it is not wanted (``enabled``)."""
    unknown = set(config) - _KEYS
    if unknown:
        raise ValueError(f"plugins.nvml: unknown key(s) {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(sorted(_KEYS - {'prefix'}))}")
    enabled = config.get("enabled", "auto")
    if enabled not in (True, False, "auto"):
        raise ValueError(f"plugins.nvml.enabled: expected true, false or auto, got {enabled!r}")
    limits = {}
    for key, default in (("max_gpus", DEFAULT_MAX_GPUS), ("max_containers", DEFAULT_MAX_CONTAINERS)):
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"plugins.nvml.{key}: expected a positive integer, got {value!r}")
        limits[key] = value
    if enabled is False:
        return None
    collector = NvmlCollector(prefix=str(config.get("prefix", DEFAULT_PREFIX)),
                              max_gpus=limits["max_gpus"], max_containers=limits["max_containers"])
    if enabled == "auto":
        if not NVIDIA_DRIVER.exists():
            return None  # no driver loaded: not even the NVML bindings are imported
        try:
            collector.start()
        except NvmlUnavailable:
            return None  # no GPU here: nothing to report, nothing failing
    return collector


# Where the NVIDIA kernel driver is loaded (Linux); without it NVML cannot start.
NVIDIA_DRIVER = Path("/proc/driver/nvidia")


@hookimpl
def modelmon_register_collectors(register: RegisterCollector, config: Mapping[str, Any]) -> None:
    collector = from_config(config)
    if collector is not None:
        register("nvml", collector)
