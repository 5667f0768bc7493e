"""The bundle KPIs of one device (``modelmon.catalog.edge_config``)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from modelmon.metrics import metric_set

from .format import REASONS

PULL_OUTCOMES = ("applied", "unchanged", "refused", "failed")


class BundleMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str, device: str) -> None:
        m = metric_set(registry, prefix)
        self.device = device
        self._info = m.gauge("edge_config_info")
        self._desired = m.gauge("edge_model_desired_info")
        # Created at the first success: a device without a bundle URL, or that never
        # reached it, has no time to report (and no 0 that reads as "1970").
        self._last_success = m.gauge("edge_bundle_last_success_timestamp_seconds")
        self._pulls = m.counter("edge_bundle_pulls_total")
        self._refused = m.counter("edge_bundles_refused_total")
        self._applied: tuple[str, str] | None = None
        self._models: dict[str, str] = {}
        # Series that exist from the start, so increase() sees the first refusal.
        for outcome in PULL_OUTCOMES:
            self._pulls.labels(device, outcome)
        for reason in REASONS:
            self._refused.labels(device, reason)

    def confirmed(self, when: float) -> None:
        self._last_success.labels(self.device).set(when)

    def pulled(self, outcome: str) -> None:
        self._pulls.labels(self.device, outcome).inc()

    def refused(self, reason: str) -> None:
        self._refused.labels(self.device, reason).inc()

    def applied(self, version: str, sha256: str, models: Mapping[str, str]) -> None:
        """The info series of the bundle now applied, replacing the previous bundle's."""
        if self._applied != (version, sha256):
            if self._applied is not None:
                self._info.remove(self.device, *self._applied)
            self._info.labels(self.device, version, sha256).set(1)
            self._applied = (version, sha256)
        for model, old in list(self._models.items()):
            if models.get(model) != old:
                self._desired.remove(self.device, model, old)
                del self._models[model]
        for model, wanted in models.items():
            if model not in self._models:
                self._desired.labels(self.device, model, wanted).set(1)
                self._models[model] = wanted
