"""Built-in plugin: the ``docker`` collector, model containers through the Docker Engine API.

Every container labelled ``modelmon.model`` (and optionally ``modelmon.version``)
is reported: CPU seconds, memory working set and limit, restarts, OOM kills,
health-check status, state, network and block I/O bytes, labelled
``model``/``version``/``container`` (catalog group ``containers``). Label the
containers that run models::

    docker run --label modelmon.model=churn --label modelmon.version=3 ...

Plugin settings (``plugins.docker`` in the config file)::

    url: unix:///var/run/docker.sock   # default: DOCKER_HOST, else this socket
    timeout: 5s                        # per Docker API call; a scrape never waits longer
    max_containers: 50                 # more labelled containers: counted, not reported
    enabled: auto                      # true, false; auto: when url or DOCKER_HOST is set,
                                       # or this process may use the default socket

``modelmon serve`` runs every registered collector, so the collector registers
itself only where Docker is (``enabled: auto``): a host without Docker shows no
failing ``docker`` collector. The edge agent runs it with ``collectors: [docker]``.
A daemon that does not answer makes ``modelmon_collector_success{collector="docker"}``
0 (logged once), never a failed scrape.

OOM kills are counted from Docker's ``oom`` events since the collector
started, read on each collection for the time since the previous one (no
background stream), so a container that was killed and restarted between two
scrapes still counts.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmon.catalog import by_name
from modelmon.hookspecs import CollectorUnavailable, RegisterCollector, hookimpl
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.units import parse_duration

log = logging.getLogger(__name__)

MODEL_LABEL = "modelmon.model"
VERSION_LABEL = "modelmon.version"
DEFAULT_URL = "unix:///var/run/docker.sock"
DEFAULT_MAX_CONTAINERS = 50
DEFAULT_TIMEOUT = 5.0
# Concurrent Docker API calls: each stats call waits for the daemon's next 1 s tick, so
# the default cap of 50 containers is read in two rounds.
_WORKERS = 25

STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy")
_LABELS = ["model", "version", "container"]
_KEYS = {"prefix", "url", "timeout", "max_containers", "enabled"}


@dataclass(frozen=True)
class _Container:
    id: str
    labels: tuple[str, str, str]  # model, version, container name
    state: str


class DockerCollector:
    """Reads the labelled containers of one Docker daemon on each ``collect()``."""

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.max_containers = max_containers
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # two scrapes at once would share one event window
        self._events_since = time.time()
        self._oom_kills: dict[tuple[str, str, str], float] = {}

    def _api(self) -> Any:
        if self._client is None:
            import docker

            # version="auto" asks the daemon once; one_shot stats need API 1.41 (Docker 20.10).
            # docker-py takes whole seconds.
            self._client = docker.APIClient(base_url=self.url, version="auto",
                                            timeout=math.ceil(self.timeout),
                                            max_pool_size=_WORKERS + 1)
        return self._client

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="modelmon-docker")
        return self._executor

    def close(self) -> None:
        """Release the daemon client's connections and the stats threads (the edge
        agent drops this collector when a bundle changes its settings)."""
        with self._lock:  # after a collection under way
            client, self._client = self._client, None
            executor, self._executor = self._executor, None
        if client is not None:
            client.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def collect(self) -> Iterator[Metric]:
        import docker.errors
        import requests

        try:
            with self._lock:
                families = self._collect()
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            self._client = None  # reconnect next time: the daemon may have restarted
            raise CollectorUnavailable(
                f"no answer from the Docker daemon at {self.url} ({type(exc).__name__}: {exc}); "
                "start dockerd, or set plugins.docker.url (or DOCKER_HOST) to its socket, or "
                "plugins.docker.enabled: false"
            ) from None
        yield from families

    def _collect(self) -> list[Metric]:
        api = self._api()
        listed = api.containers(all=True, filters={"label": MODEL_LABEL})
        containers = sorted((_describe(c) for c in listed), key=lambda c: c.labels)
        reported, left_out = containers[: self.max_containers], containers[self.max_containers:]

        f = _Families(self.prefix)
        # In parallel: the daemon answers a stats request at its next collection
        # tick (every second), so one request after another takes a second each.
        for container, read in zip(reported, self._pool().map(lambda c: _read(api, c), reported),
                                   strict=True):
            if read is not None:
                f.add(container, *read)
        self._count_oom_kills(api, {c.labels for c in reported})
        for labels in sorted({c.labels for c in reported}):
            f.oom.add_metric(list(labels), self._oom_kills.get(labels, 0.0))
        f.unreported.add_metric([], float(len(left_out)))
        return f.all()

    def _count_oom_kills(self, api: Any, current: set[tuple[str, str, str]]) -> None:
        until = time.time()
        events = api.events(
            since=f"{self._events_since:.9f}", until=f"{until:.9f}", decode=True,
            filters={"type": "container", "event": "oom", "label": MODEL_LABEL},
        )
        for event in events:
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            labels = (str(attributes.get(MODEL_LABEL, "")), str(attributes.get(VERSION_LABEL, "")),
                      str(attributes.get("name", "")))
            self._oom_kills[labels] = self._oom_kills.get(labels, 0.0) + 1
        self._events_since = until
        # Containers gone from the daemon leave; their counters start over if they return.
        for labels in set(self._oom_kills) - current:
            del self._oom_kills[labels]


def _read(api: Any, container: _Container) -> tuple[Mapping[str, Any], Mapping[str, Any] | None] | None:
    """The container's inspection and stats (running only), or None once it is gone."""
    import docker.errors

    try:
        inspected = api.inspect_container(container.id)
        stats = (api.stats(container.id, stream=False, one_shot=True)
                 if container.state == "running" else None)
    except docker.errors.NotFound:
        return None  # removed since the listing: gone, not a failure
    return inspected, stats


def _describe(listed: Mapping[str, Any]) -> _Container:
    labels = listed.get("Labels") or {}
    names = listed.get("Names") or [listed["Id"][:12]]
    return _Container(
        id=str(listed["Id"]),
        labels=(str(labels.get(MODEL_LABEL, "")), str(labels.get(VERSION_LABEL, "")),
                str(names[0]).lstrip("/")),
        state=str(listed.get("State", "")),
    )


class _Families:
    """The metric families of one collection, filled container by container."""

    def __init__(self, prefix: str) -> None:
        def gauge(name: str, *extra: str) -> GaugeMetricFamily:
            kpi = by_name(name)
            return GaugeMetricFamily(kpi.full_name(prefix), kpi.help, labels=[*_LABELS, *extra])

        def counter(name: str, *extra: str) -> CounterMetricFamily:
            kpi = by_name(name)
            return CounterMetricFamily(kpi.full_name(prefix).removesuffix("_total"), kpi.help,
                                       labels=[*_LABELS, *extra])

        self.cpu = counter("container_cpu_seconds_total")
        self.working_set = gauge("container_memory_working_set_bytes")
        self.limit = gauge("container_memory_limit_bytes")
        self.restarts = counter("container_restarts_total")
        self.oom = counter("container_oom_kills_total")
        self.state = gauge("container_state", "state")
        self.health = gauge("container_health_status", "status")
        self.network = counter("container_network_bytes_total", "direction")
        self.block_io = counter("container_block_io_bytes_total", "direction")
        kpi = by_name("containers_unreported")
        self.unreported = GaugeMetricFamily(kpi.full_name(prefix), kpi.help, labels=[])

    def all(self) -> list[Metric]:
        return [self.cpu, self.working_set, self.limit, self.restarts, self.oom, self.state,
                self.health, self.network, self.block_io, self.unreported]

    def add(self, container: _Container, inspected: Mapping[str, Any],
            stats: Mapping[str, Any] | None) -> None:
        labels = list(container.labels)
        state = inspected.get("State") or {}
        current = str(state.get("Status") or container.state)
        for name in STATES:
            self.state.add_metric([*labels, name], 1.0 if name == current else 0.0)
        health = (state.get("Health") or {}).get("Status")
        if health in HEALTH:
            for name in HEALTH:
                self.health.add_metric([*labels, name], 1.0 if name == health else 0.0)
        self.restarts.add_metric(labels, float(inspected.get("RestartCount") or 0))
        memory_limit = (inspected.get("HostConfig") or {}).get("Memory") or 0
        if memory_limit > 0:
            self.limit.add_metric(labels, float(memory_limit))
        if not stats:
            return
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        if cpu is not None:
            self.cpu.add_metric(labels, cpu / 1e9)
        working_set = _working_set(stats.get("memory_stats") or {})
        if working_set is not None:
            self.working_set.add_metric(labels, working_set)
        networks = stats.get("networks")
        if networks:
            received = sum(float(n.get("rx_bytes", 0)) for n in networks.values())
            sent = sum(float(n.get("tx_bytes", 0)) for n in networks.values())
            self.network.add_metric([*labels, "receive"], received)
            self.network.add_metric([*labels, "transmit"], sent)
        entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive")
        if entries is not None:
            totals = {"read": 0.0, "write": 0.0}
            for entry in entries:
                op = str(entry.get("op", "")).lower()  # "Read" (cgroup v1), "read" (v2)
                if op in totals:
                    totals[op] += float(entry.get("value", 0))
            for op, value in totals.items():
                self.block_io.add_metric([*labels, op], value)


def _working_set(memory: Mapping[str, Any]) -> float | None:
    """Usage minus inactive page cache, as the kubelet and ``docker stats`` compute it."""
    usage = memory.get("usage")
    if usage is None:
        return None
    details = memory.get("stats") or {}
    # cgroup v1 names it total_inactive_file, v2 inactive_file.
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    return float(max(0, usage - inactive))


def from_config(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> DockerCollector | None:
    """The collector for ``plugins.docker``, or None where it is not wanted (``enabled``)."""
    unknown = set(config) - _KEYS
    if unknown:
        raise ValueError(
            f"plugins.docker: unknown key(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted(_KEYS - {'prefix'}))}"
        )
    enabled = config.get("enabled", "auto")
    if enabled not in (True, False, "auto"):
        raise ValueError(f"plugins.docker.enabled: expected true, false or auto, got {enabled!r}")
    url = config.get("url") or environ.get("DOCKER_HOST") or None
    if url is not None and not isinstance(url, str):
        raise ValueError(f"plugins.docker.url: expected a URL such as {DEFAULT_URL}, got {url!r}")
    if enabled is False or (enabled == "auto" and url is None and not _may_use(_default_socket())):
        return None
    max_containers = config.get("max_containers", DEFAULT_MAX_CONTAINERS)
    if isinstance(max_containers, bool) or not isinstance(max_containers, int) or max_containers < 1:
        raise ValueError(
            f"plugins.docker.max_containers: expected a positive integer, got {max_containers!r}")
    timeout = parse_duration(config.get("timeout", DEFAULT_TIMEOUT), "plugins.docker.timeout")
    return DockerCollector(
        url=url or DEFAULT_URL,
        prefix=str(config.get("prefix", DEFAULT_PREFIX)),
        timeout=timeout,
        max_containers=max_containers,
    )


def _default_socket() -> Path:
    return Path(DEFAULT_URL.removeprefix("unix://"))


def _may_use(socket_path: Path) -> bool:
    """A socket this process may connect to: a host with Docker whose socket
    modelmon's user may not open is not asked to report containers (auto), so an
    upgrade does not fire ModelmonCollectorFailing there. ``enabled: true`` still does."""
    return socket_path.exists() and os.access(socket_path, os.R_OK | os.W_OK)


@hookimpl
def modelmon_register_collectors(register: RegisterCollector, config: Mapping[str, Any]) -> None:
    collector = from_config(config)
    if collector is not None:
        register("docker", collector)
