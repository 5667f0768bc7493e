"""What the live view shows, read from where a user would look: Prometheus
(the cloud's KPIs, the edge devices' remote-written ones) and the agents'
status files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from modelmon.alerting.drift import drift_series
from modelmon.demo.processes import PrometheusProcess
from modelmon.demo.stack import EdgeDevice
from modelmon.thresholds import ThresholdsConfig

RATE_WINDOW = "30s"


@dataclass
class ModelRow:
    model: str
    rps: dict[str, float] = field(default_factory=dict)  # outcome -> calls/s
    p95: float | None = None
    error_ratio: float | None = None
    drift: float | None = None  # worst feature, fleet PSI over the drift window
    accuracy: float | None = None


@dataclass
class DeviceRow:
    device: str
    link_up: bool
    agent_link_up: bool | None
    backlog: int
    last_backfill: str = "-"
    bundle: str = "-"  # the applied configuration bundle, and a refusal if any


@dataclass
class Snapshot:
    models: list[ModelRow]
    devices: list[DeviceRow]
    at: float = field(default_factory=time.time)


class SnapshotReader:
    def __init__(self, prometheus: PrometheusProcess, devices: list[EdgeDevice],
                 config: ThresholdsConfig) -> None:
        self.prometheus = prometheus
        self.devices = devices
        self.p = config.prefix
        self.drift = drift_series(config.prefix, "feature", config.quality.drift_windows[0])
        self.method = config.quality.drift_method
        # device -> (peak backlog of the current catch-up, when it started)
        self._catching_up: dict[str, int] = {}
        self._last_backfill: dict[str, str] = {}

    def _by_model(self, promql: str) -> dict[str, float]:
        try:
            result = self.prometheus.query(promql)
        except Exception:  # a slow or restarting Prometheus: show what is known
            return {}
        return {r["metric"].get("model", ""): float(r["value"][1]) for r in result}

    def read(self) -> Snapshot:
        p, w = self.p, RATE_WINDOW
        requests = f"{p}inference_requests_total"
        rows: dict[str, ModelRow] = {}
        try:
            by_outcome = self.prometheus.query(
                f"sum by (model, outcome) (rate({requests}[{w}]))")
        except Exception:
            by_outcome = []
        for r in by_outcome:
            model = r["metric"].get("model", "")
            rows.setdefault(model, ModelRow(model)).rps[r["metric"].get("outcome", "")] = float(
                r["value"][1])
        columns: list[tuple[str, str]] = [
            ("p95", f"histogram_quantile(0.95, sum by (le, model) "
                    f"(rate({p}inference_duration_seconds_bucket[{w}])))"),
            ("error_ratio", f'sum by (model) (rate({requests}{{outcome="error"}}[{w}])) '
                            f"/ sum by (model) (rate({requests}[{w}]))"),
            ("drift", f'max by (model) ({self.drift}{{method="{self.method}"}})'),
            # a replica with no joined label yet reports NaN
            ("accuracy", f"avg by (model) ({p}feedback_accuracy == {p}feedback_accuracy)"),
        ]
        for attr, promql in columns:
            for model, value in self._by_model(promql).items():
                if model in rows and value == value:  # NaN: no calls in the window
                    setattr(rows[model], attr, value)
        return Snapshot(sorted(rows.values(), key=lambda r: r.model), self._devices())

    def _devices(self) -> list[DeviceRow]:
        out = []
        for device in self.devices:
            status: dict[str, Any] = device.status()
            backlog = int((status.get("backlog") or {}).get("samples") or 0)
            name = device.name
            if not device.link_up:
                self._catching_up[name] = max(self._catching_up.get(name, 0), backlog)
            elif name in self._catching_up:
                self._catching_up[name] = max(self._catching_up[name], backlog)
                if backlog == 0:
                    peak = self._catching_up.pop(name)
                    outage = time.time() - device.proxy.changed_at
                    self._last_backfill[name] = (
                        f"{time.strftime('%H:%M:%S')} {peak} samples, "
                        f"{outage:.0f}s after the link returned")
            out.append(DeviceRow(name, device.link_up, status.get("link_up"), backlog,
                                 self._last_backfill.get(name, "-"), _bundle(status)))
        return out


def _bundle(status: dict[str, Any]) -> str:
    bundle = status.get("bundle") or {}
    text = str(bundle.get("version") or "-")
    refusal = bundle.get("last_refusal") or {}
    if refusal.get("reason"):
        text += f" (refused one: {refusal['reason']})"
    return text
