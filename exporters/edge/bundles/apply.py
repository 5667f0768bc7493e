"""What applying a bundle changes in a running agent, without a restart.

``BundleInstaller.install`` is the manager's ``install``: it first prepares
everything that can still fail on this device (the collectors the bundle
names must exist here and set up with its settings; the edge rule group its
thresholds generate must compile for the device's metric prefix; no rule may read further back than
the device's ``edge.rules_max_range``), raising BundleRefused with nothing
changed; then it swaps, in this order:

* the rule groups (the device's own, then the bundle's rule files, then the
  group generated from its thresholds), under the rule window's lock;
* the plugin collectors: a new set is built and replaces the old one in the
  agent's view in one assignment, so a collection sees one or the other;
  unchanged settings keep the running collectors; the replaced ones (and
  those built for a bundle then refused) are closed;
* the reference profiles: each model monitor attached with
  ``EdgeAgent.attach_monitor`` whose model has a new profile in the bundle
  switches to it (``ModelMonitor.use_profile``).

The device's own config wins (:mod:`.overrides`): its ``collectors:`` list
when it sets one, and each setting under its ``plugins.<name>`` over the
bundle's setting of the same name.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelmon.config import ConfigError
from modelmon.exporters.edge.rules.files import RuleFileError, RuleGroup, check_max_range
from modelmon.thresholds import prom_duration

from .format import Bundle, BundleRefused, threshold_groups_for
from .overrides import effective_collectors, effective_rules

if TYPE_CHECKING:
    from modelmon.collectors import PluginCollectors
    from modelmon.exporters.edge.agent import EdgeAgent
    from modelmon.exporters.service.monitor import ModelMonitor

log = logging.getLogger(__name__)


class BundleInstaller:
    def __init__(self, agent: EdgeAgent, device_groups: Sequence[RuleGroup]) -> None:
        self.agent = agent
        self.device_groups = tuple(device_groups)
        # The collector list and settings running now (the device's config at start).
        config = agent.config
        self._collectors: tuple[tuple[str, ...], dict[str, dict[str, Any]]] = (
            config.collectors, {k: dict(v) for k, v in config.plugins.items()})
        self._monitors: list[ModelMonitor] = []
        self._profiles: dict[str, str] = {}  # model -> sha256 of the profile in use
        self._lock = threading.Lock()  # attach_monitor against the bundle thread
        self.bundle: Bundle | None = None

    def install(self, bundle: Bundle) -> None:
        agent, config = self.agent, self.agent.config
        assert agent.rules is not None
        generated = threshold_groups_for(bundle, config.prefix)
        fleet = bundle.rule_groups + generated
        rules = effective_rules(
            self.device_groups, dataclasses.replace(bundle, rule_groups=fleet),
            interval=config.interval, evaluation_interval=config.evaluation_interval,
            query_window=config.query_window)
        # The bundle's groups the device runs (its own win, and were checked at start).
        for group in rules.groups[len(self.device_groups):]:
            try:
                check_max_range([group], int(config.rules_max_range * 1000))
            except RuleFileError as exc:
                reason = "thresholds" if group in generated else "rules"
                raise BundleRefused(reason, f"bundle {bundle.version}: {exc}") from None
        # A bundle's query_window is history of every series kept in memory, as a
        # rule's range is: bounded by the same key (the device's own setting wins).
        fleet_window = bundle.config.get("query_window")
        if config.query_window is None and fleet_window is not None \
                and fleet_window > config.rules_max_range:
            raise BundleRefused("config", (
                f"bundle {bundle.version}: query_window {prom_duration(fleet_window)} keeps "
                f"more history than this device's edge.rules_max_range "
                f"({prom_duration(config.rules_max_range)}); shorten the bundle's "
                "query_window, or raise edge.rules_max_range on a device with the memory for it"))
        wanted = effective_collectors(config, bundle)
        collectors = self._build_collectors(*wanted, bundle) if wanted != self._collectors \
            else None
        # Nothing failed: from here on the bundle is applied.
        if rules.overridden:
            log.info("bundle %s: the device's own rule groups replace %s", bundle.version,
                     ", ".join(rules.overridden))
        try:
            agent.rules.replace_groups(rules.groups, rules.evaluation_interval,
                                       rules.query_window)
        except BaseException:  # checked above: a bug; the collectors built go unused
            if collectors is not None:
                collectors.close(keep=agent.plugins.collectors.values())
            raise
        if collectors is not None:
            agent.replace_collectors(collectors)
            self._collectors = wanted
            log.info("bundle %s: collectors now %s", bundle.version,
                     ", ".join(wanted[0]) or "none")
        with self._lock:
            self.bundle = bundle
            for monitor in self._monitors:
                self._apply_profile(monitor, bundle)

    def attach_monitor(self, monitor: ModelMonitor) -> None:
        with self._lock:
            self._monitors.append(monitor)
            if self.bundle is not None:
                self._apply_profile(monitor, self.bundle)

    def _apply_profile(self, monitor: ModelMonitor, bundle: Bundle) -> None:
        entry = bundle.profiles.get(monitor.model)
        key = f"{id(monitor)}:{monitor.model}"
        if entry is None or self._profiles.get(key) == entry[0]:
            return
        try:
            monitor.use_profile(entry[1])
        except Exception:  # checked when the bundle was read: a bug, never a crash
            log.exception("bundle %s: cannot switch %s to its profile", bundle.version,
                          monitor.model)
            return
        self._profiles[key] = entry[0]
        log.info("bundle %s: model %s now measures drift against the bundle's profile",
                 bundle.version, monitor.model)

    def _build_collectors(self, names: tuple[str, ...],
                          settings: Mapping[str, Mapping[str, Any]],
                          bundle: Bundle) -> PluginCollectors:
        from modelmon.exporters.edge.agent import plugin_collectors

        config = dataclasses.replace(self.agent.config, collectors=names, plugins=settings)
        try:
            collectors = plugin_collectors(config, self.agent.plugin_manager)
        except ConfigError as exc:
            raise BundleRefused("collectors", f"bundle {bundle.version}: {exc}") from None
        newly_broken = set(collectors.broken) - set(self.agent.plugins.broken)
        if newly_broken:
            # The bundle is refused: what was built for it goes (not what is running).
            collectors.close(keep=self.agent.plugins.collectors.values())
            name = sorted(newly_broken)[0]
            raise BundleRefused("collectors", f"bundle {bundle.version}: plugin {name!r} "
                                f"cannot run with the bundle's settings "
                                f"({collectors.broken[name]}); fix plugins.{name}")
        return collectors
