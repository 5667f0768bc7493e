"""Thresholds: the one mixin-style config behind the rules and the dashboards.

Every number an alert compares against lives here, with a default that suits
a typical model server; the dashboards draw the same numbers as threshold
lines and colours on the panels that show what the alerts watch, so a panel
turns red where the alert fires. ``modelmon rules build --config FILE`` and
``modelmon dashboards build --config FILE`` read the same file and override
any subset; unknown keys and bad values fail with a message naming the field::

    slo:
      availability_target: 0.995
      latency_objective_seconds: 0.25
    quality:
      drift_threshold: 0.2
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError, load_yaml
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.units import parse_duration

DEFAULT_RUNBOOK_BASE_URL = "https://github.com/modelmon/modelmon/blob/main/docs/runbooks.md"


@dataclass(frozen=True)
class SLOThresholds:
    # Share of inference calls that must not end in outcome="error".
    availability_target: float = 0.999
    # Share of inference calls that must finish within latency_objective_seconds.
    latency_target: float = 0.99
    # Must be a bucket boundary of inference_duration_seconds (the ratio is read
    # from the histogram's le buckets, not estimated).
    latency_objective_seconds: float = 0.5
    page_for: str = "2m"
    ticket_for: str = "15m"
    # Multi-window burn-rate checks: (long window, short window, burn-rate factor).
    # The defaults are the SRE workbook's; a demo or a test shortens them to see
    # a burn fire and resolve in seconds (compose/../demo/thresholds.yml).
    page_windows: tuple[tuple[str, str, float], ...] = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
    ticket_windows: tuple[tuple[str, str, float], ...] = (("1d", "2h", 3.0), ("3d", "6h", 1.0))


@dataclass(frozen=True)
class TrafficThresholds:
    # Label matchers for Prometheus' own `up` series of modelmon targets.
    job_selector: str = 'job=~".*modelmon.*"'
    target_down_for: str = "5m"
    # No call in `no_traffic_window` although the model had calls in the
    # `no_traffic_lookback` before that.
    no_traffic_window: str = "15m"
    no_traffic_lookback: str = "1h"
    no_traffic_for: str = "5m"
    collector_failing_for: str = "10m"


@dataclass(frozen=True)
class QualityThresholds:
    # PSI: < 0.1 no shift, 0.1-0.25 moderate, > 0.25 significant.
    drift_method: str = "psi"
    drift_threshold: float = 0.25
    prediction_drift_threshold: float = 0.25
    drift_for: str = "30m"
    # Windows of the fleet drift recording rules (modelmon:feature_drift:<window>):
    # one set of rules per window, computed from the bin counters of every replica.
    drift_windows: tuple[str, ...] = ("1h", "1d")
    # The drift alerts watch the first window, and only once it holds this many
    # values (PSI's noise floor is about (bins - 1) / values: 0.02 at 500).
    min_drift_values: int = 500
    # Data-quality problems (missing, out of range, wrong type, unseen
    # category) per input row.
    violation_ratio: float = 0.05
    violation_window: str = "10m"
    violation_for: str = "15m"
    min_accuracy: float = 0.8
    # Alert too when accuracy over accuracy_window falls this far below the 1d value.
    max_accuracy_drop: float = 0.1
    min_feedback_labels: int = 100
    accuracy_for: str = "15m"


@dataclass(frozen=True)
class EdgeThresholds:
    offline_after: str = "15m"
    backlog_growing_window: str = "30m"
    backlog_growing_for: str = "30m"
    # Spool usage (bytes / max bytes) that means "near its limit".
    backlog_limit_ratio: float = 0.8
    backlog_limit_for: str = "10m"
    drops_window: str = "15m"
    # EdgeConfigStale: a device that has not confirmed its bundle for this long.
    config_stale_after: str = "1h"
    # EdgeModelVersionSkew: a device not running the desired model version for this long.
    model_skew_for: str = "30m"
    # The device itself: a filesystem whose space (free to modelmon's user) is used
    # beyond disk_full_ratio, or memory available below memory_low_ratio, for system_for.
    disk_full_ratio: float = 0.9
    memory_low_ratio: float = 0.1
    system_for: str = "10m"
    # The longest history a rule of the edge rule file (modelmon.edge.rules.yml) reads:
    # the device keeps that much of every series in memory, so longer windows stay in
    # the cloud rules (the 6h-3d burn rates, fleet drift) and out of the device's file.
    device_rules_window: str = "1h"


@dataclass(frozen=True)
class LogsThresholds:
    loss_window: str = "10m"
    loss_for: str = "0s"


@dataclass(frozen=True)
class ContainerThresholds:
    # Restarts of one model container within restarts_window that make a crash loop.
    restarts_window: str = "15m"
    max_restarts: int = 2
    oom_window: str = "15m"
    # Working set / memory limit that means "near its limit".
    memory_limit_ratio: float = 0.9
    memory_limit_for: str = "10m"


@dataclass(frozen=True)
class ThresholdsConfig:
    prefix: str = DEFAULT_PREFIX
    evaluation_interval: str = "1m"
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    slo: SLOThresholds = field(default_factory=SLOThresholds)
    traffic: TrafficThresholds = field(default_factory=TrafficThresholds)
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    edge: EdgeThresholds = field(default_factory=EdgeThresholds)
    logs: LogsThresholds = field(default_factory=LogsThresholds)
    containers: ContainerThresholds = field(default_factory=ContainerThresholds)

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base_url}#{alert.lower()}"


_SECTIONS: dict[str, type] = {
    "slo": SLOThresholds, "traffic": TrafficThresholds, "quality": QualityThresholds,
    "edge": EdgeThresholds, "logs": LogsThresholds, "containers": ContainerThresholds,
}
_RATIOS = {
    "slo.availability_target", "slo.latency_target", "quality.violation_ratio",
    "quality.min_accuracy", "quality.max_accuracy_drop", "edge.backlog_limit_ratio",
    "edge.disk_full_ratio", "edge.memory_low_ratio",
    "containers.memory_limit_ratio",
}


def prom_duration(seconds: float) -> str:
    """A Prometheus duration string (``90s`` -> ``1m30s``) for ``seconds``."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _duration(value: object, name: str) -> str:
    if value in (0, "0", "0s"):
        return "0s"
    try:
        seconds = parse_duration(value, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # .inf (or 1.0e+308 s in ms) has no duration text: an OverflowError escaped here,
    # past every caller that reports a bad thresholds file (a bundle's included).
    if not math.isfinite(seconds * 1000):
        raise ConfigError(f"{name}: expected a finite duration such as '10m', got {value!r}")
    return prom_duration(seconds)


_BURN_WINDOWS = ("page_windows", "ticket_windows")


def _burn_windows(value: object, name: str) -> tuple[tuple[str, str, float], ...]:
    expected = (f"{name}: expected a non-empty list of [long window, short window, burn-rate "
                f"factor] such as [[1h, 5m, 14.4]]")
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{expected}, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, list | tuple) or len(item) != 3:
            raise ConfigError(f"{expected}, got {item!r} at [{i}]")
        long, short = (_duration(w, f"{name}[{i}]") for w in item[:2])
        factor = item[2]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise ConfigError(f"{name}[{i}]: the burn-rate factor must be a positive number, "
                              f"got {factor!r}")
        if "0s" in (long, short) or parse_duration(short, name) >= parse_duration(long, name):
            raise ConfigError(f"{name}[{i}]: the short window must be shorter than the long one "
                              f"and both longer than 0s, got {item!r}")
        out.append((long, short, float(factor)))
    return tuple(out)


def _section(cls: type, data: object, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(
            f"{path or 'thresholds config'}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{path}.{key}" if path else key
        default = known[key].default
        if key in _BURN_WINDOWS:
            kwargs[key] = _burn_windows(value, name)
        elif key.endswith("_windows"):
            expected = f"{name}: expected a non-empty list of distinct durations such as [1h, 1d]"
            if not isinstance(value, list | tuple) or not value:
                raise ConfigError(f"{expected}, got {value!r}")
            windows = tuple(_duration(v, f"{name}[{i}]") for i, v in enumerate(value))
            if "0s" in windows:
                raise ConfigError(f"{name}: a window must be longer than 0s, got {value!r}")
            if len(set(windows)) != len(windows):  # 1h and 60m would record one series twice
                raise ConfigError(f"{expected}, got {value!r} ({', '.join(windows)})")
            kwargs[key] = windows
        elif isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: expected a non-negative integer, got {value!r}")
            kwargs[key] = value
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name}: expected a non-negative number, got {value!r}")
            if name in _RATIOS and not 0 < value < 1:
                raise ConfigError(f"{name}: expected a ratio between 0 and 1 (exclusive), got {value!r}")
            kwargs[key] = float(value)
        elif key.endswith(("_for", "_window", "_after", "_lookback", "_age")) or key == "evaluation_interval":
            kwargs[key] = _duration(value, name)
        elif isinstance(value, str) and value:
            kwargs[key] = value
        else:
            raise ConfigError(f"{name}: expected a non-empty string, got {value!r}")
    return cls(**kwargs)


def thresholds_from_mapping(data: Mapping[str, Any]) -> ThresholdsConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("thresholds config: the top level must be a mapping such as {slo: {...}}")
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    config: ThresholdsConfig = _section(ThresholdsConfig, top, "")
    sections = {key: _section(_SECTIONS[key], data[key] or {}, key) for key in _SECTIONS if key in data}
    config = dataclasses.replace(config, **sections)
    if config.quality.drift_method not in ("psi", "js", "ks"):
        raise ConfigError(
            f"quality.drift_method: expected one of psi, js, ks, got {config.quality.drift_method!r}"
        )
    return config


def load_thresholds(path: str | Path | None) -> ThresholdsConfig:
    """The defaults, overridden by the YAML file at ``path`` when given."""
    if path is None:
        return ThresholdsConfig()
    try:
        return thresholds_from_mapping(load_yaml(path))
    except ConfigError as exc:
        raise ConfigError(f"thresholds config {path}: {exc}") from None


def defaults_as_mapping() -> dict[str, Any]:
    """The default config as plain data: written to alert_rules/config.defaults.yml."""
    plain: dict[str, Any] = _plain(dataclasses.asdict(ThresholdsConfig()))
    return plain


def _plain(value: Any) -> Any:
    """Tuples as lists, so the defaults dump as plain YAML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
