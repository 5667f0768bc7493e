"""Alerts from the device: edge rule alerts delivered to Alertmanager's API v2
through a durable spool, with their true ``startsAt``/``endsAt``, state kept
across restarts, and local actions (the ``modelmon_on_edge_alert`` hook).

See docs/edge.md, "Alerts from the device"."""

from __future__ import annotations

from modelmon.exporters.edge.alerting.config import (
    AlertingConfig,
    AlertmanagerTarget,
    alerting_config,
)

__all__ = ["AlertingConfig", "AlertmanagerTarget", "alerting_config"]
