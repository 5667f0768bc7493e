"""Alerts on what runs where on an edge fleet: bundles and model versions.

Both read series the devices remote-write (``modelmon.catalog.edge_config``
and ``model_info`` with the ``device`` label). A device that stops
delivering drops out of both after Prometheus's 5 m lookback, so an offline
device raises EdgeDeviceOffline, not these.
"""

from __future__ import annotations

from typing import Any

from modelmon.alerting.common import alert, has
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text, parse_duration


def edge_config_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, e = config.prefix, config.edge
    out = []
    if has(catalog, "edge_bundle_last_success_timestamp_seconds", ("device",)):
        stale = parse_duration(e.config_stale_after, "edge.config_stale_after")
        out.append(alert(
            config, "EdgeConfigStale",
            f"time() - max by (device) ({p}edge_bundle_last_success_timestamp_seconds)"
            f" > {number_text(stale)}",
            for_="0s", severity="warning",
            summary="An edge device has not confirmed it runs the latest configuration bundle.",
            description=(
                "Device {{ $labels.device }} last confirmed its bundle {{ $value | "
                "humanizeDuration }} ago: it cannot reach the bundle URL, or it refuses the "
                "bundle there (modelmon_edge_bundles_refused_total says why) and keeps its "
                "last known good one."
            ),
        ))
    if has(catalog, "edge_model_desired_info", ("device", "model", "version")) and \
            has(catalog, "model_info", ("model", "version")):
        out.append(alert(
            config, "EdgeModelVersionSkew",
            f"max by (device, model, version) ({p}edge_model_desired_info)\n"
            f"unless on (device, model, version)\n"
            f"max by (device, model, version) ({p}model_info)",
            for_=e.model_skew_for, severity="warning",
            summary="An edge device does not run the model version its bundle asks for.",
            description=(
                "Device {{ $labels.device }} has not run version {{ $labels.version }} of "
                f"model {{{{ $labels.model }}}}, desired by its bundle, for {e.model_skew_for}."
            ),
        ))
    return out
