"""The alerts besides the SLO burn rates: traffic, model quality, edge, logs.

Each family is generated only from the KPIs the catalog has, so a group of
KPIs that lands later brings its alerts with it.
"""

from __future__ import annotations

from typing import Any

from modelmon.alerting import accuracy, drift
from modelmon.alerting.common import alert, has, record
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text, parse_duration

# Data-quality counters summed into one violations-per-row ratio, by kind.
VIOLATION_KPIS = {
    "missing": "feature_missing_total",
    "out_of_range": "feature_out_of_range_total",
    "type_error": "feature_type_errors_total",
    "unseen_category": "feature_unseen_category_total",
}


def _seconds(duration: str) -> str:
    return f"{number_text(parse_duration(duration, 'duration'))}"


def violations_rate(prefix: str) -> str:
    return f"model_version:{prefix}input_violations:rate"


def input_rows_rate(prefix: str) -> str:
    return f"model_version:{prefix}input_rows:rate"


def service_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, t = config.prefix, config.traffic
    out = [alert(
        config, "ModelmonTargetDown", f"up{{{t.job_selector}}} == 0",
        for_=t.target_down_for, severity="warning",
        summary="Prometheus cannot scrape a modelmon target.",
        description=(
            "{{ $labels.job }}/{{ $labels.instance }} has been unreachable for "
            f"{t.target_down_for}: its model KPIs are missing and no other alert about it can fire."
        ),
    )]
    if has(catalog, "inference_requests_total", ("model",)):
        requests = f"{p}inference_requests_total"
        out.append(alert(
            config, "ModelNoTraffic",
            f"sum by (model) (rate({requests}[{t.no_traffic_lookback}] offset {t.no_traffic_window})) > 0\n"
            f"unless\nsum by (model) (rate({requests}[{t.no_traffic_window}])) > 0",
            for_=t.no_traffic_for, severity="warning",
            summary="A model that was serving requests has stopped receiving any.",
            description=(
                "Model {{ $labels.model }} received no inference call in the last "
                f"{t.no_traffic_window}, although it had traffic in the {t.no_traffic_lookback} "
                "before."
            ),
        ))
    if has(catalog, "collector_success", ("collector",)):
        out.append(alert(
            config, "ModelmonCollectorFailing", f"{p}collector_success == 0",
            for_=t.collector_failing_for, severity="warning",
            summary="A modelmon plugin collector fails; its metrics are missing from the scrape.",
            description=(
                "Collector {{ $labels.collector }} on {{ $labels.instance }} has failed every "
                f"scrape for {t.collector_failing_for}; the target's log says why."
            ),
        ))
    if has(catalog, "label_overflow_total", ("metric", "label")):
        out.append(alert(
            config, "ModelmonLabelOverflow",
            f"sum by (job, instance, metric, label) (increase({p}label_overflow_total[1h])) > 0",
            for_="0s", severity="info",
            summary="A label reached its cardinality cap; new values are folded into __other__.",
            description=(
                "{{ $value | humanize }} values of label {{ $labels.label }} of "
                "{{ $labels.metric }} went to __other__ in the last hour on {{ $labels.instance }}."
            ),
        ))
    return out


def quality_recording_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, q = config.prefix, config.quality
    rules = []
    for kind, name in VIOLATION_KPIS.items():
        if has(catalog, name, ("model", "version")):
            rules.append(record(
                violations_rate(p) + q.violation_window,
                f"sum by (model, version) (rate({p}{name}[{q.violation_window}]))",
                {"kind": kind},
            ))
    if rules and has(catalog, "input_rows_total", ("model", "version")):
        rules.append(record(
            input_rows_rate(p) + q.violation_window,
            f"sum by (model, version) (rate({p}input_rows_total[{q.violation_window}]))",
        ))
    else:
        rules = []
    return rules


def quality_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, q = config.prefix, config.quality
    out = []
    out += _drift_alerts(config, catalog)
    window = q.violation_window
    if any(r.get("record") == input_rows_rate(p) + window for r in quality_recording_rules(config, catalog)):
        out.append(alert(
            config, "ModelDataQualityViolations",
            f"sum by (model, version) ({violations_rate(p)}{window})\n/\n"
            f"{input_rows_rate(p)}{window}\n> {number_text(q.violation_ratio)}",
            for_=q.violation_for, severity="warning",
            summary="Many model inputs have missing, out-of-range, mistyped or unseen values.",
            description=(
                "Model {{ $labels.model }} version {{ $labels.version }} sees "
                "{{ $value | printf \"%.3f\" }} data-quality problems per input row over "
                f"{window} (threshold {number_text(q.violation_ratio)})."
            ),
        ))
    out += _accuracy_alerts(config, catalog)
    if has(catalog, "schema_violations_total", ("model", "version", "kind")):
        out.append(alert(
            config, "ModelSchemaViolations",
            f"sum by (model, version, kind) (increase({p}schema_violations_total[{window}])) > 0",
            for_=q.violation_for, severity="warning",
            summary="Model inputs do not match the schema of the reference profile.",
            description=(
                "Model {{ $labels.model }} version {{ $labels.version }} received "
                "{{ $value | humanize }} inputs with schema violation {{ $labels.kind }} in the last "
                f"{window}."
            ),
        ))
    return out


def edge_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...],
                offline_lookback: str | None = "1d") -> list[dict[str, Any]]:
    """``offline_lookback=None``: the device's own rule file, where the agent's
    last-success gauge is collected every interval and never goes stale."""
    p, e = config.prefix, config.edge
    out = []
    if has(catalog, "edge_last_send_success_timestamp_seconds", ("device",)):
        # remote-written series get no staleness marker and vanish from instant
        # queries 5m after their last sample: look back a day instead.
        last_success = f"{p}edge_last_send_success_timestamp_seconds"
        if offline_lookback is not None:
            last_success = f"max_over_time({last_success}[{offline_lookback}])"
        out.append(alert(
            config, "EdgeDeviceOffline",
            f"time() - max by (device) ({last_success})"
            f" > {_seconds(e.offline_after)}",
            for_="0s", severity="warning",
            summary="An edge device has not delivered data for a while.",
            description=(
                "Device {{ $labels.device }} last delivered samples {{ $value | humanizeDuration }} "
                "ago; its data waits in its spool and will be backfilled when the link returns."
            ),
        ))
    if has(catalog, "edge_backlog_samples", ("device",)):
        out.append(alert(
            config, "EdgeBacklogGrowing",
            f"max by (device) (deriv({p}edge_backlog_samples[{e.backlog_growing_window}])) > 0\n"
            f"and\nmax by (device) ({p}edge_backlog_samples) > 0",
            for_=e.backlog_growing_for, severity="warning",
            summary="The spool backlog of an edge device keeps growing.",
            description=(
                "The backlog of device {{ $labels.device }} has grown for "
                f"{e.backlog_growing_for}: samples are produced faster than they are sent."
            ),
        ))
    if all(has(catalog, name, ("device",)) for name in (
        "edge_backlog_bytes", "edge_backlog_oldest_sample_age_seconds",
        "edge_spool_max_bytes", "edge_spool_max_age_seconds",
    )):
        out.append(alert(
            config, "EdgeBacklogNearLimit",
            f"max by (device) ({p}edge_backlog_bytes / {p}edge_spool_max_bytes)"
            f" > {number_text(e.backlog_limit_ratio)}\n"
            f"or\nmax by (device) ({p}edge_backlog_oldest_sample_age_seconds"
            f" / {p}edge_spool_max_age_seconds) > {number_text(e.backlog_limit_ratio)}",
            for_=e.backlog_limit_for, severity="critical",
            summary="An edge spool is close to its size or age limit; samples will soon be dropped.",
            description=(
                "The spool of device {{ $labels.device }} is at {{ $value | humanizePercentage }} "
                "of its max_bytes or max_age limit; beyond it the oldest samples are dropped."
            ),
        ))
    if has(catalog, "edge_samples_dropped_total", ("device", "reason")):
        out.append(alert(
            config, "EdgeSamplesDropped",
            f"sum by (device, reason) (increase({p}edge_samples_dropped_total[{e.drops_window}])) > 0",
            for_="0s", severity="warning",
            summary="An edge device dropped samples without delivering them.",
            description=(
                "Device {{ $labels.device }} dropped {{ $value | humanize }} samples in the last "
                f"{e.drops_window} for reason {{{{ $labels.reason }}}}."
            ),
        ))
    out += _system_alerts(config, catalog)
    return out


def _system_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    """The device itself (the built-in system collector): a full disk stops the spool,
    the logs and model updates; no memory left gets the model server OOM-killed."""
    p, e = config.prefix, config.edge
    out = []
    if has(catalog, "system_filesystem_bytes", ("device", "mountpoint", "state")):
        fs = f"{p}system_filesystem_bytes"
        out.append(alert(
            config, "EdgeDiskNearlyFull",
            f"max by (device, mountpoint) (\n  1 - {fs}{{state=\"free\"}} / ignoring (state) "
            f"{fs}{{state=\"total\"}}\n) > {number_text(e.disk_full_ratio)}",
            for_=e.system_for, severity="warning",
            summary="A filesystem of an edge device is nearly full.",
            description=(
                "{{ $labels.mountpoint }} on device {{ $labels.device }} is "
                "{{ $value | humanizePercentage }} full: when it fills up, the spool stops "
                "accepting samples and logs, and model updates fail."
            ),
        ))
    if has(catalog, "system_memory_bytes", ("device", "state")):
        memory = f"{p}system_memory_bytes"
        out.append(alert(
            config, "EdgeMemoryLow",
            f"max by (device) (\n  {memory}{{state=\"available\"}} / ignoring (state) "
            f"{memory}{{state=\"total\"}}\n) < {number_text(e.memory_low_ratio)}",
            for_=e.system_for, severity="warning",
            summary="An edge device is running out of memory.",
            description=(
                "Device {{ $labels.device }} has {{ $value | humanizePercentage }} of its "
                "memory available: the kernel's OOM killer may stop the model server."
            ),
        ))
    return out


def log_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, lg = config.prefix, config.logs
    if not has(catalog, "log_events_total", ("sink", "outcome")):
        return []
    out = []
    for name, outcome, what in (
        ("LogShipperDroppingEvents", "dropped", "dropped (lost)"),
        ("LogShipperDeadLettering", "dead_lettered", "sent to the dead-letter store"),
    ):
        out.append(alert(
            config, name,
            f'sum by (job, instance, sink) (increase({p}log_events_total{{outcome="{outcome}"}}'
            f"[{lg.loss_window}])) > 0",
            for_=lg.loss_for, severity="warning",
            summary=f"The log shipper has {what.split(' (')[0]} events.",
            description=(
                f"{{{{ $value | humanize }}}} log events were {what} by sink "
                f"{{{{ $labels.sink }}}} on {{{{ $labels.instance }}}} in the last {lg.loss_window}."
            ),
        ))
    return out


def _drift_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    """Drift alerts on the fleet drift rules: every replica's rows of a model version
    in the first drift window (a single process is a fleet of one)."""
    p, q = config.prefix, config.quality
    method, w = q.drift_method, q.drift_windows[0]
    out = []
    for kind, labels, threshold, name, summary, subject in (
        ("feature", "model, version, feature", q.drift_threshold, "ModelFeatureDrift",
         "The live distribution of an input feature has drifted from the training data.",
         "Feature {{ $labels.feature }} of model {{ $labels.model }} version "
         "{{ $labels.version }} has"),
        ("prediction", "model, version", q.prediction_drift_threshold, "ModelPredictionDrift",
         "The distribution of a model's predictions has shifted from its reference.",
         "Predictions of model {{ $labels.model }} version {{ $labels.version }} have"),
    ):
        if not has(catalog, f"{kind}_cumulative_bin_values_total", ("model", "version")):
            continue
        out.append(alert(
            config, name,
            f"max by ({labels}) (\n  {drift.drift_series(p, kind, w)}{{method=\"{method}\"}}\n"
            f"  and on ({labels})\n"
            f"  {drift.drift_values_series(p, kind, w)} >= {q.min_drift_values}\n"
            f") > {number_text(threshold)}",
            for_=q.drift_for, severity="warning",
            summary=summary,
            description=(
                f"{subject} {method.upper()} {{{{ $value | printf \"%.3f\" }}}} over the last "
                f"{w} of all its replicas against the reference profile (threshold {number_text(threshold)})."
            ),
        ))
    return out


def _accuracy_alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    """ModelAccuracyDrop on the fleet accuracy rules: the labels every replica of a model
    version joined in the first window, against the minimum and against a longer view
    (the longest configured window, else the first window's average over a day)."""
    p, q = config.prefix, config.quality
    if not has(catalog, "feedback_total", ("model", "version", "outcome")):
        return []
    w = q.drift_windows[0]
    acc = accuracy.accuracy_series(p, w)
    longest = max(q.drift_windows, key=lambda d: parse_duration(d, "window"))
    longer = longest if parse_duration(longest, "window") > parse_duration(w, "window") else None
    baseline = accuracy.accuracy_series(p, longer) if longer else f"avg_over_time({acc}[1d])"
    versus = f"its {longer} value" if longer else "its 1d average"
    expr = (
        f"(\n  {acc} < {number_text(q.min_accuracy)}\nor\n  {acc}\n  < {baseline} - {number_text(q.max_accuracy_drop)}\n)\n"
        # Accuracy over a handful of labels is noise.
        f"and on (model, version)\n{accuracy.labels_series(p, w)} >= {q.min_feedback_labels}"
    )
    return [alert(
        config, "ModelAccuracyDrop", expr,
        for_=q.accuracy_for, severity="warning",
        summary="Accuracy measured from ground-truth feedback has dropped.",
        description=(
            "Model {{ $labels.model }} version {{ $labels.version }} was right on "
            f"{{{{ $value | humanizePercentage }}}} of the feedback all its replicas joined in the last "
            f"{w} (minimum {number_text(q.min_accuracy)}, or at most {number_text(q.max_accuracy_drop)} below {versus})."
        ),
    )]
