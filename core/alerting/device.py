"""The edge rule file: what a device evaluates over its own samples, online or offline.

``modelmon rules build`` writes it next to the cloud rules
(``alert_rules/modelmon.edge.rules.yml``); an edge agent loads it with
``edge.rules`` (or a configuration bundle) unchanged. It watches the KPIs the
catalog marks ``on_device``: the device's spool and link, its bundle, its
plugin collectors, and the models running on it (errors, latency, input
quality, in-process drift). Every aggregation keeps ``device`` in its ``by``
clause, so the same file gives one result per device in a cloud Prometheus
too.

What differs from the cloud rules, and why:

- one group, recording rules before the alerts that read them: Prometheus
  evaluates a group's rules in order, so an alert sees its recording rules of
  the same evaluation on the device and in Prometheus alike;
- recording rules are named at the ``device:`` level
  (``device:modelmon_inference_errors:ratio_rate5m``), and every alert carries
  ``evaluated_on: device``: the device remote-writes its results and
  ``ALERTS``, and the cloud Prometheus evaluating the cloud rules over the
  same series must not write into the same series;
- no rule reads more than ``edge.device_rules_window`` (1h) of history: the
  device keeps that much of every series in memory. Burn-rate checks over
  longer windows (the 6h page check, the ticket checks), fleet drift and
  fleet accuracy stay in the cloud; drift on the device is the in-process
  statistic (``feature_drift``, ``prediction_drift``);
- ``EdgeDeviceOffline`` reads the agent's own last-success gauge without the
  cloud rule's 1d lookback (locally the series never goes stale).
"""

from __future__ import annotations

import re
from typing import Any

from modelmon.alerting import alerts, edge_config, slo
from modelmon.alerting.common import alert, record
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text, parse_duration

GROUP_NAME = "modelmon.edge.device"
# Every alert of the edge rule file carries it: apart from the cloud's alerts of the
# same name in Prometheus's ALERTS, selectable in Alertmanager routes.
EVALUATED_ON = {"evaluated_on": "device"}
_BY = "device, model, version"


def device_catalog(catalog: tuple[KPI, ...]) -> tuple[KPI, ...]:
    """The KPIs a device watches itself (``KPI.on_device``)."""
    return tuple(k for k in catalog if k.on_device)


def _has(catalog: tuple[KPI, ...], name: str, labels: tuple[str, ...] = ()) -> bool:
    # ``device`` is not among a model KPI's labels: the agent adds it to every series.
    kpi = next((k for k in catalog if k.name == name), None)
    return kpi is not None and set(labels) <= set(kpi.labels)


def errors_ratio(prefix: str, window: str) -> str:
    return f"device:{prefix}inference_errors:ratio_rate{window}"


def slow_ratio(prefix: str, window: str) -> str:
    return f"device:{prefix}inference_slow:ratio_rate{window}"


def violations_rate(prefix: str, window: str) -> str:
    return f"device:{prefix}input_violations:rate{window}"


def input_rows_rate(prefix: str, window: str) -> str:
    return f"device:{prefix}input_rows:rate{window}"


_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                 "y": 31536000}
_RANGE = re.compile(r"\[([0-9a-z]+)\]")
_OFFSET = re.compile(r"\boffset\s+([0-9a-z]+)")


def _seconds(duration: str) -> float:
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(duration))


def reach_seconds(expr: str) -> float:
    """How far back ``expr`` reads, at most: its longest range plus its longest offset."""
    ranges = [_seconds(d) for d in _RANGE.findall(expr)]
    offsets = [_seconds(d) for d in _OFFSET.findall(expr)]
    return max(ranges, default=0.0) + max(offsets, default=0.0)


def _within(burn: tuple[tuple[str, str, float], ...], limit: float
            ) -> tuple[tuple[str, str, float], ...]:
    return tuple(w for w in burn if parse_duration(w[0], "window") <= limit)


def _slo_windows(config: ThresholdsConfig, limit: float) -> tuple[str, ...]:
    kept = _within(config.slo.page_windows, limit) + _within(config.slo.ticket_windows, limit)
    distinct = {w for long, short, _ in kept for w in (long, short)}
    return tuple(sorted(distinct, key=lambda w: parse_duration(w, "window")))


def _slo_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...], limit: float
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    p, s = config.prefix, config.slo
    recording: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    families = []
    if _has(catalog, "inference_requests_total", ("model", "version", "outcome")):
        requests = f"{p}inference_requests_total"
        for w in _slo_windows(config, limit):
            recording.append(record(
                errors_ratio(p, w),
                f'sum by ({_BY}) (rate({requests}{{outcome="error"}}[{w}]))\n'
                f"/\nsum by ({_BY}) (rate({requests}[{w}]))",
            ))
        families.append((
            "availability", errors_ratio, 1 - s.availability_target, "ModelErrorBudgetBurning",
            "A model on an edge device is failing fast enough to exhaust its availability "
            "error budget.",
            "Model {{ $labels.model }} version {{ $labels.version }} on device "
            "{{ $labels.device }} failed {{ $value | humanizePercentage }} of its inference "
            "calls (long window of the %s burn-rate checks, evaluated on the device); the "
            f"availability objective is {s.availability_target * 100:g}%%."))
    if _has(catalog, "inference_duration_seconds", ("model", "version")):
        le = slo.latency_bucket(config, catalog)
        duration = f"{p}inference_duration_seconds"
        for w in _slo_windows(config, limit):
            recording.append(record(
                slow_ratio(p, w),
                f'1 - (\n  sum by ({_BY}) (rate({duration}_bucket{{le="{le}"}}[{w}]))\n'
                f"  /\n  sum by ({_BY}) (rate({duration}_count[{w}]))\n)",
            ))
        objective = f"{number_text(s.latency_objective_seconds)}s"
        families.append((
            "latency", slow_ratio, 1 - s.latency_target, "ModelLatencyBudgetBurning",
            "A model on an edge device is slow often enough to exhaust its latency error budget.",
            "{{ $value | humanizePercentage }} of the inference calls of model "
            "{{ $labels.model }} version {{ $labels.version }} on device {{ $labels.device }} "
            f"took longer than {objective} (long window of the %s burn-rate checks, evaluated "
            f"on the device); the objective is {s.latency_target * 100:g}%% within {objective}."))
    for kind, series, budget, stem, summary, description in families:
        for suffix, burn, severity, for_ in (("Fast", s.page_windows, "critical", s.page_for),
                                             ("Slow", s.ticket_windows, "warning", s.ticket_for)):
            kept = _within(burn, limit)
            if not kept:
                continue
            out.append(alert(
                config, stem + suffix,
                slo._burn_expr(lambda w, f=series: f(p, w), kept, budget),
                for_=for_, severity=severity, labels={"slo": kind},
                summary=summary,
                description=description % " and ".join(long for long, _, _ in kept),
            ))
    return recording, out


def _quality_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    p, q = config.prefix, config.quality
    w = q.violation_window
    recording: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for kind, name in alerts.VIOLATION_KPIS.items():
        if _has(catalog, name, ("model", "version")):
            recording.append(record(
                violations_rate(p, w), f"sum by ({_BY}) (rate({p}{name}[{w}]))", {"kind": kind}))
    if recording and _has(catalog, "input_rows_total", ("model", "version")):
        recording.append(record(input_rows_rate(p, w),
                                f"sum by ({_BY}) (rate({p}input_rows_total[{w}]))"))
        out.append(alert(
            config, "ModelDataQualityViolations",
            f"sum by ({_BY}) ({violations_rate(p, w)})\n/\n{input_rows_rate(p, w)}\n"
            f"> {number_text(q.violation_ratio)}",
            for_=q.violation_for, severity="warning",
            summary="Many inputs of a model on an edge device have missing, out-of-range, "
            "mistyped or unseen values.",
            description=(
                "Model {{ $labels.model }} version {{ $labels.version }} on device "
                "{{ $labels.device }} sees {{ $value | printf \"%.3f\" }} data-quality problems "
                f"per input row over {w} (threshold {number_text(q.violation_ratio)})."
            ),
        ))
    else:
        recording = []
    if _has(catalog, "schema_violations_total", ("model", "version", "kind")):
        out.append(alert(
            config, "ModelSchemaViolations",
            f"sum by ({_BY}, kind) (increase({p}schema_violations_total[{w}])) > 0",
            for_=q.violation_for, severity="warning",
            summary="Inputs of a model on an edge device do not match its reference profile's "
            "schema.",
            description=(
                "Model {{ $labels.model }} version {{ $labels.version }} on device "
                "{{ $labels.device }} received {{ $value | humanize }} inputs with schema "
                f"violation {{{{ $labels.kind }}}} in the last {w}."
            ),
        ))
    # Drift on the device is the in-process statistic over the monitor's own window:
    # the fleet drift rules sum bin counters over every replica, in the cloud.
    for gauge, labels, threshold, name, subject in (
        ("feature_drift", f"{_BY}, feature", q.drift_threshold, "ModelFeatureDrift",
         "Feature {{ $labels.feature }} of model {{ $labels.model }} version "
         "{{ $labels.version }} on device {{ $labels.device }} has"),
        ("prediction_drift", _BY, q.prediction_drift_threshold, "ModelPredictionDrift",
         "Predictions of model {{ $labels.model }} version {{ $labels.version }} on device "
         "{{ $labels.device }} have"),
    ):
        if not (_has(catalog, gauge, ("model", "version", "method"))
                and _has(catalog, "drift_window_rows", ("model", "version"))):
            continue
        out.append(alert(
            config, name,
            f"max by ({labels}) (\n  {p}{gauge}{{method=\"{q.drift_method}\"}}\n"
            f"  and on ({_BY})\n  {p}drift_window_rows >= {q.min_drift_values}\n"
            f") > {number_text(threshold)}",
            for_=q.drift_for, severity="warning",
            summary="A model on an edge device sees inputs or predictions unlike its reference "
            "profile.",
            description=(
                f"{subject} {q.drift_method.upper()} {{{{ $value | printf \"%.3f\" }}}} over "
                f"the monitor's drift window on the device (threshold {number_text(threshold)})."
            ),
        ))
    return recording, out


def _device_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    t = config.traffic
    out: list[dict[str, Any]] = []
    if _has(catalog, "collector_success", ("collector",)):
        out.append(alert(
            config, "ModelmonCollectorFailing", f"{config.prefix}collector_success == 0",
            for_=t.collector_failing_for, severity="warning",
            summary="A modelmon plugin collector fails on an edge device; its metrics are "
            "missing.",
            description=(
                "Collector {{ $labels.collector }} on device {{ $labels.device }} has failed "
                f"every collection for {t.collector_failing_for}; the agent's log says why."
            ),
        ))
    out += alerts.edge_alerts(config, catalog, offline_lookback=None)
    out += edge_config.edge_config_alerts(config, catalog)
    return out


def rule_groups(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    """The edge rule file's one group (none when the catalog marks nothing ``on_device``)."""
    kpis = device_catalog(catalog)
    limit = parse_duration(config.edge.device_rules_window, "edge.device_rules_window")
    slo_recording, slo_alerts = _slo_rules(config, kpis, limit)
    quality_recording, quality_alerts = _quality_rules(config, kpis)
    recording = slo_recording + quality_recording
    out = slo_alerts + quality_alerts + _device_alerts(config, kpis)
    # A rule reading further back than the window the device keeps stays in the cloud
    # (e.g. a violation_window or backlog_growing_window set longer than the window).
    recording = [r for r in recording if reach_seconds(r["expr"]) <= limit]
    kept = {r["record"] for r in recording}
    out = [a for a in out if reach_seconds(a["expr"]) <= limit
           and all(name in kept for name in re.findall(r"\bdevice:[a-z0-9_:]+", a["expr"]))]
    for rule in out:
        rule["labels"] = {**rule["labels"], **EVALUATED_ON}
    rules = recording + out
    if not rules:
        return []
    return [{"name": GROUP_NAME, "interval": config.evaluation_interval, "rules": rules}]
