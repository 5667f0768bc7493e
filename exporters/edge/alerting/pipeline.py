"""The agent's alert path: evaluation -> notifications -> alert spool -> Alertmanager.

    rules (collector thread) -> notifier -> spool <state>/alerts-spool (durable)
                                         -> alerts-state.json (restart)
                                         -> local actions (modelmon_on_edge_alert)
    delivery worker (its own thread) -> every Alertmanager, POST /api/v2/alerts

The notifications of each round of evaluations are one spool record, durable
when ``after_evaluation`` returns; the core delivery worker sends them (the
same loop as remote_write: backoff with full jitter, ``Retry-After``), with
the remote_write section's ``min_backoff`` and ``max_backoff``. The link to
Alertmanager is independent of the remote_write link: each has its own spool.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.spool import Spool, SpoolFull, SpoolLocked, SpoolUnavailable
from modelmon.spool.crypto import SpoolCipher, SpoolKeyMismatch
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker

from .actions import AlertActions
from .alertmanager import AlertmanagerDestination
from .config import AlertingConfig
from .notifier import NotifierSettings, notifications
from .state import AlertStateStore
from .telemetry import AlertDeliveryMetrics

if TYPE_CHECKING:
    from ..config import EdgeConfig
    from ..rules.runner import EdgeRuleRunner

log = logging.getLogger(__name__)

BATCH_RECORDS = 1000  # evaluations per POST at most; coalesced per alert before sending


class EdgeAlerting:
    def __init__(self, config: EdgeConfig, alerting: AlertingConfig, runner: EdgeRuleRunner,
                 *, cipher: SpoolCipher | None, stop: threading.Event,
                 plugin_manager: pluggy.PluginManager | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        from modelmon.plugin_manager import get_plugin_manager

        self.config = alerting
        self.runner = runner
        self.settings = NotifierSettings(
            resend_delay_ms=int(alerting.resend_delay * 1000),
            external_url=alerting.external_url,
            external_labels={"device": config.device_id, **config.labels},
        )
        self.state = AlertStateStore(config.state_dir / "alerts-state.json",
                                     int(alerting.for_outage_tolerance * 1000),
                                     int(alerting.for_grace_period * 1000))
        runner.on_first_evaluation = self.state.restore
        self.actions = AlertActions(plugin_manager or get_plugin_manager(), config.plugins)
        spool_dir = config.state_dir / "alerts-spool"
        kwargs: dict[str, Any] = {"max_bytes": alerting.spool_max_bytes,
                                  "max_age": config.spool.max_age, "cipher": cipher}
        if config.spool.fsync is not None:
            kwargs["fsync"] = config.spool.fsync
        try:
            self.spool = Spool(spool_dir, **kwargs)
        except SpoolKeyMismatch as exc:
            raise ConfigError(f"edge.spool.encryption: {exc} (alert spool {spool_dir})") from None
        except SpoolUnavailable as exc:
            raise ConfigError(f"edge.spool.path: {exc}; make {config.spool.path} a directory "
                              "this user can write") from None
        except SpoolLocked:
            raise ConfigError(f"edge.spool.path: {spool_dir} is in use by another process; "
                              "give this agent its own path") from None
        spool = self.spool
        self.destination = AlertmanagerDestination(
            alerting.alertmanagers,
            more_after=lambda seq: bool(spool.peek_payloads(1, after_seq=seq)))
        # Delivery KPIs on ``registry`` (the agent's, so they are remote-written too).
        self.metrics: AlertDeliveryMetrics | None = None
        if registry is not None:
            self.metrics = AlertDeliveryMetrics(
                registry, config.prefix, config.device_id,
                [c.url for c in self.destination.clients], spool.stats().dropped_items)
            self.destination.on_post = self.metrics.posted
        rw = config.remote_write
        self.worker = DeliveryWorker(
            self.spool, self.destination,
            DeliverySettings(batch_records=BATCH_RECORDS, batch_bytes=4 * 1024**2,
                             backoff_base=rw.min_backoff, backoff_cap=rw.max_backoff,
                             retry_after_cap=rw.max_backoff),
            stop=stop, name="modelmon-edge-alerts")
        self.spooled_alerts = 0
        # With the config file's logs: section, each change is also an ECS event
        # (edge-alert), set by the agent.
        self.log_event: Callable[[dict[str, Any]], object] | None = None

    def start(self) -> None:
        self.actions.start()
        self.worker.start()

    def after_evaluation(self) -> None:
        """After ``runner.evaluate_due``: spool what Prometheus would send now, save
        the alert state, queue the state changes for the local actions."""
        evaluated = self.runner.evaluated
        if not evaluated:
            return
        out = notifications(evaluated, self.settings)
        t_ms = max(result.t_ms for _, _, result in evaluated)
        if out.send:
            try:
                self.spool.append_many([json.dumps(out.send).encode()], created=t_ms / 1000,
                                       items=[len(out.send)])
                self.spooled_alerts += len(out.send)
            except SpoolFull as exc:  # full_policy block cannot happen (drop_oldest); be safe
                log.warning("%s; %d alert notifications dropped", exc, len(out.send))
        # After the spool: a crash in between sends a change twice, never loses one.
        try:
            self.state.save(self.runner.evaluators, [e for e, _, _ in evaluated], t_ms)
        except OSError as exc:
            log.warning("cannot save the alert state to %s (%s); a restart now would start "
                        "the alerts afresh", self.state.path, exc)
        for change in out.changes:
            self.actions.submit(change)
            if self.log_event is not None:
                try:
                    self.log_event(change)
                except Exception:  # an event is never worth an alert
                    log.exception("cannot log the edge-alert event")

    def refresh_metrics(self) -> None:
        """The alert spool's pending and dropped notifications into the KPIs."""
        if self.metrics is not None:
            stats = self.spool.stats()
            self.metrics.update_spool(stats.pending_items, stats.dropped_items)

    def status(self) -> dict[str, Any]:
        stats = self.spool.stats()
        return {
            "alertmanagers": [c.url for c in self.destination.clients],
            "pending_notifications": stats.pending_items,
            "delivered_notifications": stats.delivered_items,
            "dropped_notifications": dict(stats.dropped_items),
            "last_success": self.destination.last_success,
            "last_error": self.destination.last_error,
            "restored_alerts": self.state.restored,
        }

    def stop(self, timeout: float = 5.0) -> None:
        self.worker.stop(timeout)
        self.actions.stop(timeout)

    def close(self) -> None:
        self.spool.close()
        self.destination.close()
