"""The edge agent: collect every interval -> spool -> remote_write, plus a local /metrics.

Three threads, none of which touches a model server's request path:

* the collector takes the sample stream every ``interval`` and appends it to
  the spool (durable when ``append`` returns), and refreshes ``status.json``;
* the sender drains the spool to the receiver (the core delivery worker,
  ``sender.remote_write_worker``);
* the local /metrics listener serves the same series, device-labelled, for
  when a Prometheus can reach the device.

Use it from a model server to include its ModelMonitor KPIs::

    from modelmon.exporters.edge import EdgeAgent, load_edge_config
    agent = EdgeAgent(load_edge_config("edge.yaml"))   # global registry by default
    agent.start()
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy
from prometheus_client import REGISTRY, CollectorRegistry

from modelmon.collectors import PluginCollectors, close_collectors
from modelmon.config import ConfigError
from modelmon.exposition import metrics_app
from modelmon.spool import Spool, SpoolFull, SpoolLocked, SpoolUnavailable
from modelmon.spool.crypto import SpoolKeyMismatch
from modelmon.spool.health import is_disk_full
from modelmon.spool.keys import cipher_from_config

from .config import EdgeConfig
from .http_server import serve
from .metric_metadata import MetricMetadata
from .remote_write import RemoteWriteClient
from .sender import remote_write_worker
from .stream import DeviceView, SampleStream
from .telemetry import EdgeMetrics

if TYPE_CHECKING:
    from modelmon.exporters.service.monitor import ModelMonitor

    from .alerting.pipeline import EdgeAlerting
    from .bundles.manager import BundleManager
    from .rules.runner import EdgeRuleRunner

log = logging.getLogger(__name__)

STATUS_EVERY = 0.5  # seconds between status.json refreshes
# status.json is padded to a multiple of this, so that on a full disk it can be
# rewritten in place, in the blocks it already has (see write_json_atomic).
STATUS_BLOCK = 4096
LOG_EVERY = 60.0  # seconds between two log lines about the same failure


class EdgeAgent:
    def __init__(
        self,
        config: EdgeConfig,
        registry: CollectorRegistry | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.config = config
        self.registry = REGISTRY if registry is None else registry
        self.metrics = EdgeMetrics(self.registry, config.prefix, config.device_id)
        self.metrics.set_spool_limits(config.spool.max_bytes, config.spool.max_age)
        self.plugin_manager = plugin_manager
        self.plugins = plugin_collectors(config, plugin_manager)
        self.view = DeviceView([self.registry, self.plugins],
                               {"device": config.device_id, **config.labels})
        # Before the spool is opened: a refused rule file leaves nothing locked.
        self.rules: EdgeRuleRunner | None = None
        if config.rules or config.query_window or config.bundle is not None:
            self.rules = _rule_runner(config)
        # The families' HELP/TYPE only where the query API will answer /api/v1/metadata.
        self._stream = SampleStream(
            self.view, config.remote_write.max_samples_per_send,
            metadata=MetricMetadata() if self.rules is not None else None)
        self.bundles: BundleManager | None = None
        if config.bundle is not None:  # the last known good bundle runs from the start
            self.bundles = _bundle_manager(self)
        spool_kwargs: dict[str, Any] = {
            "max_bytes": config.spool.max_bytes,
            "max_age": config.spool.max_age,
            "full_policy": config.spool.full_policy,
        }
        if config.spool.fsync is not None:
            spool_kwargs["fsync"] = config.spool.fsync
        # Keys are read now: a missing or wrong key stops the agent here.
        spool_kwargs["cipher"] = cipher_from_config(config.spool.encryption,
                                                    "edge.spool.encryption")
        try:
            self.spool = Spool(config.spool_dir, **spool_kwargs)
        except SpoolKeyMismatch as exc:
            raise ConfigError(f"edge.spool.encryption: {exc}") from None
        except ValueError as exc:  # e.g. an fsync mode the spool does not know
            raise ConfigError(f"edge.spool.{exc}") from None
        except SpoolUnavailable as exc:
            raise ConfigError(
                f"edge.spool.path: {exc}; make {config.spool.path} a directory this user can "
                "write, or set edge.spool.path to one"
            ) from None
        except SpoolLocked:
            raise ConfigError(
                f"edge.spool.path: {config.spool_dir} is in use by another process (another "
                "edge agent with this config?); stop it or give this agent its own path"
            ) from None
        self._drop_baseline = dict(self.spool.stats().dropped_items)
        rw = config.remote_write
        self.client = RemoteWriteClient(rw.url, timeout=rw.timeout, auth=rw.auth, tls=rw.tls,
                                        headers=dict(rw.headers))
        self._stop = threading.Event()
        self.sender = remote_write_worker(self.spool, self.client, rw, self.metrics, self._stop)
        self._threads: list[threading.Thread] = []
        self._http: Any = None
        self.started = time.time()
        self._last_status = 0.0
        self._closed = False
        self._last_logged: dict[str, float] = {}
        self.alerting: EdgeAlerting | None = None
        try:
            self.alerting = self._alerting(spool_kwargs["cipher"], plugin_manager)
            self.logs = self._link_events() if config.logs is not None else None
        except BaseException:
            if self.alerting is not None:
                self.alerting.close()
            self.spool.close()  # the directory is free for the next try
            raise

    def _alerting(self, cipher: Any, pm: pluggy.PluginManager | None) -> EdgeAlerting | None:
        """The rules' alerts to Alertmanager (edge.alerting), through a spool of their own."""
        if self.config.alerting is None:
            return None
        if self.rules is None:
            log.warning("edge.alerting is set but no rules are: no alert will be sent until "
                        "edge.rules (or a bundle) gives some")
            return None
        from .alerting.pipeline import EdgeAlerting

        return EdgeAlerting(self.config, self.config.alerting, self.rules, cipher=cipher,
                            stop=self._stop, plugin_manager=pm, registry=self.registry)

    def replace_collectors(self, collectors: PluginCollectors) -> None:
        """Run ``collectors`` from the next collection on (a bundle's collector settings);
        the replaced ones are closed once their collections under way are done."""
        index = self.view.sources.index(self.plugins)
        old = self.plugins
        self.view.sources[index], self.plugins = collectors, collectors  # one swap each
        old.close(keep=collectors.collectors.values())

    def attach_monitor(self, monitor: ModelMonitor) -> None:
        """Let the bundles switch ``monitor`` to the reference profile they carry for
        its model (now, when the applied bundle has one)."""
        if self.bundles is None:
            raise ConfigError("edge.bundle: attach_monitor needs a bundle: section (the "
                              "profiles come with the bundles)")
        assert self.bundles.installer is not None
        self.bundles.installer.attach_monitor(monitor)

    def _link_events(self) -> Any:
        """A log shipper, and edge-link-lost / -restored events on link changes."""
        from modelmon import __version__
        from modelmon.exporters.logs import LogShipper, ModelLog
        from modelmon.exporters.logs.config import shipper_options

        config = self.config
        assert config.logs is not None
        shipper = LogShipper(**{
            "service_name": "modelmon-edge-agent",
            **shipper_options(config.logs, config.base_dir),
            "registry": self.registry, "prefix": config.prefix,
        })
        # The agent's own identity in the events' model.* fields.
        events = ModelLog(_Emitter("modelmon-edge-agent", __version__, "modelmon"), shipper)
        metrics, device = self.metrics, config.device_id
        down_since: list[float] = []

        def on_link_change(up: bool, now: float) -> None:
            if not up:
                down_since[:] = [now]
                events.edge_link_lost(device=device, reason=metrics.last_error or None)
            else:
                outage = now - down_since[0] if down_since else None
                events.edge_link_restored(device=device, outage_seconds=outage,
                                          backlog=self.spool.stats().pending_items)

        metrics.on_link_change = on_link_change
        if self.bundles is not None:
            self._bundle_events(events)
        if self.alerting is not None:
            self.alerting.log_event = lambda change: events.edge_alert(alert=change, device=device)
        return shipper

    def _bundle_events(self, events: Any) -> None:
        """edge-bundle-applied / -refused ECS events; the bundle restored at start
        (applied before the shipper existed) is told now."""
        from .bundles.format import Bundle, BundleRefused, peek_identity

        bundles, device = self.bundles, self.config.device_id
        assert bundles is not None

        def applied(bundle: Bundle, source: str, previous: Bundle | None) -> None:
            events.edge_bundle_applied(
                version=bundle.version, sha256=bundle.sha256, source=source,
                signed=bundle.signed, device=device,
                previous_version=previous.version if previous is not None else None)

        def refused(exc: BundleRefused, source: str, data: bytes | None) -> None:
            version, sha256 = peek_identity(data) if data is not None else (None, None)
            running = bundles.bundle
            events.edge_bundle_refused(
                reason=exc.reason, message=str(exc), source=source, version=version,
                sha256=sha256, device=device,
                running_version=running.version if running is not None else None,
                running_sha256=running.sha256 if running is not None else None)

        bundles.on_applied, bundles.on_refused = applied, refused
        if bundles.bundle is not None and bundles.current is not None:
            applied(bundles.bundle, f"restored ({bundles.current.source})", None)

    # -- lifecycle ------------------------------------------------------------

    @property
    def listen_port(self) -> int | None:
        """The bound port of the local /metrics listener (useful with ``listen: ...:0``)."""
        return None if self._http is None else int(self._http.server_port)

    def start(self, *, collect: bool = True) -> None:
        """Start the threads; ``collect=False`` only drains the spool (and serves /metrics)."""
        if self.config.listen is not None:
            host, port = self.config.listen
            app = metrics_app(self.view)
            if self.rules is not None:  # /metrics plus the query API over the local window
                from .rules.query_api import QueryAPI

                app = QueryAPI(self.rules.storage, self.rules.lock, app, rules=self.rules,
                               metric_metadata=self._stream.metadata)
            self._http = serve(host, port, app)
        loops = [("sender", self.sender.run)]
        if collect:
            loops.insert(0, ("collector", self._collect_loop))
        if self.bundles is not None:
            stop, bundles = self._stop, self.bundles
            loops.append(("bundles", lambda: bundles.run(stop)))
        for name, target in loops:
            thread = threading.Thread(target=target, name=f"modelmon-edge-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.alerting is not None:
            self.alerting.start()
        log.info("edge agent %s started: every %ss -> %s (spool %s)", self.config.device_id,
                 self.config.interval, self.config.remote_write.url, self.config.spool_dir)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads and close the spool; everything spooled stays for the next start."""
        if self._closed:
            return
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.alerting is not None:
            self.alerting.stop(max(0.0, deadline - time.monotonic()))
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self._write_status(force=True, running=False)
        self.spool.close()
        if self.alerting is not None:  # after the status, which reads its spool
            self.alerting.close()
        self.client.close()
        self.plugins.close()
        if self.logs is not None:
            self.logs.close()
        self._closed = True

    def run_forever(self) -> None:
        """Start and block until SIGTERM or SIGINT; then stop cleanly."""
        done = threading.Event()

        def _on_signal(signum: int, _frame: Any) -> None:
            done.set()

        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.start()
        try:
            while not done.wait(1.0):
                pass
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.stop()

    # -- one collection -----------------------------------------------------

    def collect_once(self, now: float | None = None) -> int:
        """Collect the sample stream now and spool it; returns the samples spooled."""
        now = time.time() if now is None else now
        self._refresh_spool_metrics(now)
        records = self._stream.collect(now)
        if not records:
            return 0
        if self.rules is not None:
            records = records + self._evaluate_rules(records, now)
        try:
            seqs = self.spool.append_many(
                [payload for payload, _ in records], created=now, items=[n for _, n in records]
            )
        except SpoolFull as exc:  # full_policy block: counted by the spool as block_timeout
            log.warning("%s; this collection is dropped", exc)
            return 0
        spooled = sum(n for (_, n), seq in zip(records, seqs, strict=True) if seq is not None)
        self.metrics.collected.inc(spooled)
        # Written once the samples are durable: the crash tests use it as ground truth.
        log.debug("spooled %d samples collected at %d ms", spooled, int(now * 1000))
        return spooled

    def _evaluate_rules(self, records: list[tuple[bytes, int]], now: float
                        ) -> list[tuple[bytes, int]]:
        """The collection into the rules' window, then the groups that are due:
        their results are spooled with the collection, at its timestamp."""
        assert self.rules is not None
        try:
            self.rules.observe([payload for payload, _ in records])
            results = self.rules.evaluate_due(int(now * 1000))
        except Exception:  # a rule bug must not stop collection
            if self._due("rules"):
                log.exception("edge rule evaluation failed; the collection is spooled without "
                              "rule results (logged at most once a minute)")
            return []
        if self.alerting is not None:
            try:
                self.alerting.after_evaluation()
            except Exception:  # nor may an alerting bug
                if self._due("alerting"):
                    log.exception("edge alert notification failed (logged at most once a "
                                  "minute)")
        return results

    def _refresh_spool_metrics(self, now: float) -> None:
        self.metrics.update_spool(self.spool.stats(), now, self._drop_baseline)
        self.metrics.backfill_hold.set(self.sender.reconnect.left())
        if self.alerting is not None:
            try:
                self.alerting.refresh_metrics()
            except Exception:  # the alert spool's trouble must not cost the collection
                if self._due("alerting"):
                    log.exception("cannot read the alert spool's counts (logged at most once "
                                  "a minute)")

    def _collect_loop(self) -> None:
        interval = self.config.interval
        next_at = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_at:
                try:
                    self.collect_once()
                except Exception:  # a full disk or a bug must not end the agent
                    if self._due("collect"):
                        log.exception("edge collection failed; trying again next interval "
                                      "(logged at most once a minute)")
                next_at += interval
                if next_at < time.monotonic():  # we fell behind: skip, do not burst
                    next_at = time.monotonic() + interval
            try:
                self._write_status()
            except OSError as exc:
                if self._due("status"):
                    log.error("cannot write %s (%s); `modelmon edge status` shows the last "
                              "state written (logged at most once a minute)",
                              self.config.status_file, exc)
            self._stop.wait(max(0.0, min(next_at - time.monotonic(), STATUS_EVERY)))

    def _due(self, what: str) -> bool:
        """True at most once per LOG_EVERY for ``what``: a failure that repeats
        every interval (a full disk) must not fill the log as well."""
        now = time.monotonic()
        last = self._last_logged.get(what)
        if last is not None and now - last < LOG_EVERY:
            return False
        self._last_logged[what] = now
        return True

    # -- status.json, read by `modelmon edge status` --------------------------

    def status(self, running: bool = True) -> dict[str, Any]:
        stats = self.spool.stats()
        m = self.metrics
        return {
            "device_id": self.config.device_id,
            "pid": os.getpid(),
            "running": running,
            "started": self.started,
            "updated": time.time(),
            "url": self.config.remote_write.url,
            "order": self.config.remote_write.order,
            "link_up": m.link_state,
            "last_success": m.last_success_time,
            "last_error": m.last_error,
            "backlog": {
                "samples": stats.pending_items,
                "records": stats.pending,
                "bytes": stats.pending_bytes,
                "oldest_created": stats.oldest_created,
            },
            "spool": {
                "accepted": stats.accepted,
                "delivered": stats.delivered,
                "accepted_samples": stats.accepted_items,
                "delivered_samples": stats.delivered_items,
                "dropped_samples": dict(stats.dropped_items),
                "dead_lettered": stats.dead_lettered,
                "disk_bytes": stats.disk_bytes,
                "max_bytes": self.config.spool.max_bytes,
                "max_age": self.config.spool.max_age,
            },
            "since_start": {
                "sent_samples": m.sent_total,
                "dropped_samples": dict(m.dropped_totals),
            },
            # Why the agent runs but cannot do all of its job (a full disk).
            "degraded": stats.degraded,
            "degraded_since": stats.degraded_since,
            "storage_errors": dict(stats.storage_errors),
            "alerting": None if self.alerting is None else self.alerting.status(),
            "bundle": None if self.bundles is None else self.bundles.status(),
        }

    def _write_status(self, force: bool = False, running: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < STATUS_EVERY:
            return
        self._last_status = now
        write_json_atomic(self.config.status_file, self.status(running))


def write_json_atomic(path: os.PathLike[str] | str, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, replacing ``path`` atomically (write, rename).

    On a full disk a new file cannot be written, so the text is written over
    the old file, in the blocks it already has: the text is padded with spaces
    (valid JSON) to a multiple of STATUS_BLOCK, so the old file is as long as
    the new text. A reader may then see a half-written file and read again
    (``status.read_status``). The status file stays fresh, and the agent is
    not reported stopped while it runs."""
    text = json.dumps(data)
    text += " " * (-len(text) % STATUS_BLOCK)
    tmp = f"{os.fspath(path)}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, text.encode(), 0)
            os.ftruncate(fd, len(text))  # shrinking needs no space
        finally:
            os.close(fd)


def _rule_runner(config: EdgeConfig) -> EdgeRuleRunner:
    # Imported only when rules are configured: the parser is a native extension.
    from .rules import RuleFileError
    from .rules.runner import EdgeRuleRunner

    try:
        return EdgeRuleRunner.from_files(
            config.rules, config.base_dir, config.evaluation_interval or config.interval,
            {"device": config.device_id, **config.labels}, config.query_window,
            max_range_ms=int(config.rules_max_range * 1000))
    except RuleFileError as exc:  # the files changed since the config was read
        raise ConfigError(f"edge.rules: {exc}") from None


def _bundle_manager(agent: EdgeAgent) -> BundleManager:
    """Bundles applied to the running agent (the device's own settings win)."""
    from .bundles.apply import BundleInstaller
    from .bundles.manager import BundleManager
    from .bundles.telemetry import BundleMetrics
    from .rules import load_rule_files

    config = agent.config
    assert config.bundle is not None and agent.rules is not None
    device_groups = load_rule_files(config.rules, config.base_dir) if config.rules else []
    installer = BundleInstaller(agent, device_groups)
    metrics = BundleMetrics(agent.registry, config.prefix, config.device_id)
    directory = config.state_dir / "bundles"
    try:
        manager = BundleManager(config.bundle, directory, metrics, installer.install)
        manager.installer = installer
        manager.restore()
    except OSError as exc:
        raise ConfigError(f"edge.spool.path: cannot use {directory} for bundles ({exc}); make "
                          f"{config.state_dir} a directory this user can write") from None
    return manager


def plugin_collectors(config: EdgeConfig, pm: pluggy.PluginManager | None) -> PluginCollectors:
    plugin_config = {name: dict(section) for name, section in config.plugins.items()}
    # The system collector labels by device itself, so a scrape without the
    # agent's DeviceView (modelmon serve) shows the same label.
    plugin_config["system"] = {"device": config.device_id, **plugin_config.get("system", {})}
    collectors = PluginCollectors(plugin_config, config.prefix, pm)
    wanted = set(config.collectors)
    available = set(collectors.collectors) | set(collectors.broken)
    for index, name in enumerate(config.collectors):
        if name not in available:
            collectors.close()
            raise ConfigError(
                f"edge.collectors[{index}]: no collector named {name!r}; available: "
                f"{', '.join(sorted(available)) or 'none'} (is its plugin installed and allowed "
                "by MODELMON_PLUGINS?)"
            )
    # Every plugin registered its collectors: the ones not wanted are closed as dropped.
    close_collectors({n: c for n, c in collectors.collectors.items() if n not in wanted})
    collectors.collectors = {n: c for n, c in collectors.collectors.items() if n in wanted}
    collectors.broken = {n: e for n, e in collectors.broken.items() if n in wanted}
    return collectors


@dataclass(frozen=True)
class _Emitter:
    """Who emits the agent's events: ModelLog reads model, version, framework."""

    model: str
    version: str
    framework: str
