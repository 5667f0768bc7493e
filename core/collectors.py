"""Plugin collectors behind error boundaries.

prometheus_client fails a whole scrape when one collector raises. Here every
plugin collector runs inside its own boundary (node_exporter's pattern): a
failure is logged, its metrics are left out, and
``modelmon_collector_success{collector}`` says 0; the scrape goes on.

A set that is dropped (the edge agent's, replaced by a bundle's) is closed:
``close()`` waits for the collections under way, then calls each collector's
``close()`` (or ``shutdown()``) when it has one, releasing what it holds (the
Docker collector's client and threads).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pluggy
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from modelmon.catalog import by_name
from modelmon.hookspecs import Collector, CollectorUnavailable
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.labels import clean_label_value
from modelmon.plugin_manager import get_plugin_manager, load_failures

log = logging.getLogger(__name__)


class PluginCollectors:
    """One registry collector that runs every plugin collector in isolation."""

    def __init__(
        self,
        plugin_config: Mapping[str, Mapping[str, Any]] | None = None,
        prefix: str = DEFAULT_PREFIX,
        pm: pluggy.PluginManager | None = None,
    ) -> None:
        self.prefix = prefix
        self.collectors: dict[str, Collector] = {}
        # Collections under way, and whether close() was called: a closed set collects
        # nothing, and close() waits for the collections already started.
        self._state = threading.Condition()
        self._active = 0
        self._closed = False
        # Collector -> the CollectorUnavailable message last logged for it.
        self._unavailable: dict[str, str] = {}
        # Collectors that could not even be set up: reported as failing forever.
        self.broken: dict[str, str] = dict(load_failures()) if pm is None else {}
        pm = pm or get_plugin_manager()
        plugin_config = plugin_config or {}
        for impl in pm.hook.modelmon_register_collectors.get_hookimpls():
            name = impl.plugin_name

            def register(cname: str, collector: Collector, _plugin: str = name) -> None:
                if cname in self.collectors:
                    raise ValueError(
                        f"plugin {_plugin!r} registered collector {cname!r} twice or under a "
                        "name another plugin uses; collector names must be unique"
                    )
                if not callable(getattr(collector, "collect", None)):
                    raise TypeError(f"collector {cname!r} of plugin {_plugin!r} has no collect()")
                self.collectors[cname] = collector

            config = {"prefix": prefix, **plugin_config.get(name, {})}
            kwargs = {"register": register, "config": config}
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Exception as exc:
                log.exception("plugin %r failed in modelmon_register_collectors", name)
                self.broken[name] = f"{type(exc).__name__}: {exc}"

    def collect(self) -> Iterator[Metric]:
        with self._state:
            if self._closed:
                return
            self._active += 1
        try:
            families = list(self._collect())
        finally:
            with self._state:
                self._active -= 1
                self._state.notify_all()
        yield from families

    def close(self, timeout: float = 60.0, keep: Iterable[Collector] = ()) -> None:
        """Close every collector that has ``close()`` or ``shutdown()``, once the
        collections under way finished (at most ``timeout`` s), but those in
        ``keep`` (a plugin may register one instance in every set); a failing one
        is logged and the others are closed still."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.wait_for(lambda: self._active == 0, timeout)
        kept = {id(c) for c in keep}
        close_collectors({n: c for n, c in self.collectors.items() if id(c) not in kept})

    def _collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            by_name("collector_success").full_name(self.prefix),
            by_name("collector_success").help,
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            by_name("collector_duration_seconds").full_name(self.prefix),
            by_name("collector_duration_seconds").help,
            labels=["collector"],
        )
        for name, collector in self.collectors.items():
            start = time.perf_counter()
            try:
                # Materialize inside the boundary: a generator fails lazily.
                families = list(collector.collect())
                self._unavailable.pop(name, None)
            except CollectorUnavailable as exc:
                if self._unavailable.get(name) != str(exc):
                    log.warning("collector %r unavailable: %s", name, exc)
                self._unavailable[name] = str(exc)
                families = None
            except Exception:
                log.exception("collector %r failed; its metrics are left out of this scrape", name)
                families = None
            duration.add_metric([name], time.perf_counter() - start)
            success.add_metric([name], 0.0 if families is None else 1.0)
            if families:
                yield from (_printable(family) for family in families)
        for name in self.broken:
            success.add_metric([name], 0.0)
            duration.add_metric([name], 0.0)
        yield success
        yield duration

    def describe(self) -> list[Metric]:
        # An empty describe() keeps prometheus_client from calling collect()
        # at registration time (a slow plugin would stall start-up).
        return []


def close_collectors(collectors: Mapping[str, Collector]) -> None:
    """Call ``close()`` (or ``shutdown()``) of each collector that has one; a
    failure is logged and the others are closed still."""
    for name, collector in collectors.items():
        close = getattr(collector, "close", None) or getattr(collector, "shutdown", None)
        if not callable(close):
            continue
        try:
            close()
        except Exception:
            log.exception("collector %r failed to close", name)


def _printable(family: Metric) -> Metric:
    """``family`` with label values and help a strict consumer takes (modelmon.labels).

    Device names come from the system: a mount point decoded with
    surrogateescape holds lone surrogates, which would fail the whole scrape
    at encoding time, outside this collector's error boundary.
    """
    try:
        family.documentation.encode("utf-8")
    except UnicodeEncodeError:  # help is escaped by the exposition; only surrogates hurt
        family.documentation = family.documentation.encode("utf-8", "replace").decode("utf-8")
    if not all(v.isprintable() for s in family.samples for v in s.labels.values()):
        family.samples = [
            s._replace(labels={k: clean_label_value(v) for k, v in s.labels.items()})
            for s in family.samples
        ]
    return family


_registered: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, PluginCollectors]] = (
    weakref.WeakKeyDictionary()
)
_registered_lock = threading.Lock()


def register_plugin_collectors(
    registry: CollectorRegistry,
    plugin_config: Mapping[str, Mapping[str, Any]] | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> PluginCollectors:
    """The plugin collectors of ``registry``, registered once per registry and
    prefix: two instrumented apps sharing a registry must not export every
    plugin metric twice. The first registration's plugin config applies."""
    with _registered_lock:
        per_prefix = _registered.setdefault(registry, {})
        collectors = per_prefix.get(prefix)
        if collectors is None:
            collectors = per_prefix[prefix] = PluginCollectors(plugin_config, prefix)
            registry.register(collectors)
        return collectors
