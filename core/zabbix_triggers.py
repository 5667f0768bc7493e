"""The triggers of the Zabbix template, from the numbers of the Prometheus alerts.

Each trigger carries its Prometheus alert's name and runbook. The thresholds become
template macros a host can override; a ``for:`` becomes the window of a ``min``/``max``/
``avg`` function, and the burn-rate alerts keep their multi-window form (the long and
the short window both burn).
"""

from __future__ import annotations

from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text
from modelmon.zabbix_items import (
    DiscoveryRule,
    add_item,
    add_trigger,
    catalog_kpi,
    item_key,
    ref,
    zabbix_duration,
)


def add_triggers(rules: dict[tuple[str, ...], DiscoveryRule], config: ThresholdsConfig) -> None:
    """Add the trigger prototypes (and the items only they read) to ``rules``."""
    rules.setdefault(("model", "version"), DiscoveryRule(("model", "version")))
    _slo_triggers(rules[("model", "version")], config.prefix, config)
    _threshold_triggers(rules, config)


def _slo_triggers(rule: DiscoveryRule, prefix: str, config: ThresholdsConfig) -> None:
    """The multi-window burn-rate alerts of ``modelmon.alerting.slo``, per model version."""
    requests = catalog_kpi("inference_requests_total")
    duration = catalog_kpi("inference_duration_seconds")
    calls = add_item(rule, prefix, requests, requests.name, rate=True, function="sum",
                  variant="all", label_hint="(all outcomes)")
    errors = add_item(rule, prefix, requests, requests.name, rate=True, function="sum",
                   variant="error", extra='outcome="error"', label_hint='(outcome="error")')
    objective = repr(float(config.slo.latency_objective_seconds))
    fast = add_item(rule, prefix, duration, duration.name + "_bucket", rate=True,
                 extra=f'le="{objective}"', variant=f"le{objective}",
                 label_hint=f'(le="{objective}")')
    count = item_key("rate", duration.name + "_count", rule.labels)
    for windows, priority, severity, speed in (
            (config.slo.page_windows, "HIGH", "page", "Fast"),
            (config.slo.ticket_windows, "WARNING", "ticket", "Slow")):
        def burn(term: str, windows: tuple[tuple[str, str, float], ...] = windows) -> str:
            # Prometheus' multi-window check: both the long and the short window burn fast.
            return " or ".join(
                "(" + " and ".join(term.replace("@W", zabbix_duration(w)).replace("@F", f"{number_text(factor)}")
                                   for w in (long, short)) + ")"
                for long, short, factor in windows)

        add_trigger(rule, f"ModelErrorBudgetBurning{speed}",
                 burn(f"avg({ref(errors)},@W)>@F*(1-{{$MODELMON.SLO.AVAILABILITY}})"
                      f"*avg({ref(calls)},@W)"), priority,
                 "Errors consume the availability error budget "
                 f"({severity} burn-rate windows {list(windows)}).",
                 config.runbook_url(f"ModelErrorBudgetBurning{speed}"))
        add_trigger(rule, f"ModelLatencyBudgetBurning{speed}",
                 burn(f"avg({ref(count)},@W)-avg({ref(fast)},@W)>@F"
                      f"*(1-{{$MODELMON.SLO.LATENCY}})*avg({ref(count)},@W)"), priority,
                 f"Calls slower than {objective}s consume the latency error budget "
                 f"({severity} burn-rate windows {list(windows)}).",
                 config.runbook_url(f"ModelLatencyBudgetBurning{speed}"))




def _threshold_triggers(rules: dict[tuple[str, ...], DiscoveryRule], config: ThresholdsConfig) -> None:
    prefix, e, c = config.prefix, config.edge, config.containers

    def value(name: str, labels: tuple[str, ...]) -> str:
        return ref(item_key("value", name, labels))

    mv = ("model", "version")
    rows = catalog_kpi("drift_window_rows")
    for labels, kpi_name, name, macro, what in (
        (("model", "version", "feature", "method"), "feature_drift", "ModelFeatureDrift",
         "DRIFT", "A feature's input distribution has drifted from the reference profile."),
        (("model", "version", "method"), "prediction_drift", "ModelPredictionDrift",
         "PREDICTION_DRIFT", "The distribution of the model's predictions has shifted from "
         "its reference."),
    ):
        # PSI over a handful of values is noise: the alert waits for min_drift_values rows,
        # read here per discovered row from the model version's drift_window_rows.
        window_rows = add_item(rules[labels], prefix, rows, rows.name, rate=False,
                            variant=kpi_name, match=mv, label_hint="(drift window)")
        add_trigger(rules[labels], name,
                 f"min({value(kpi_name, labels)},{{$MODELMON.DRIFT.FOR}})"
                 f">{{$MODELMON.{macro}.MAX}} and last({ref(window_rows)})"
                 f">={{$MODELMON.DRIFT.MIN_VALUES}}", "WARNING", what, config.runbook_url(name))
    acc = value("feedback_accuracy", mv)
    add_trigger(rules[mv], "ModelAccuracyDrop",
             f"(max({acc},{{$MODELMON.ACCURACY.FOR}})<{{$MODELMON.ACCURACY.MIN}} or "
             f"max({acc},{{$MODELMON.ACCURACY.FOR}})<avg({acc},1d)-{{$MODELMON.ACCURACY.MAX_DROP}})"
             f" and last({value('feedback_window_labels', mv)})>={{$MODELMON.FEEDBACK.MIN_LABELS}}",
             "WARNING", "Accuracy against ground-truth labels is below the minimum, or has "
             "dropped below its 1d average.", config.runbook_url("ModelAccuracyDrop"))
    dev = ("device",)
    add_trigger(rules[dev], "EdgeDeviceOffline",
             f"last({value('edge_last_send_success_timestamp_seconds', dev)})"
             f"<now()-{{$MODELMON.EDGE.OFFLINE_AFTER}}", "WARNING",
             "The device has not delivered a batch for longer than the offline threshold.",
             config.runbook_url("EdgeDeviceOffline"))
    backlog_for = zabbix_duration(e.backlog_limit_for)
    add_trigger(rules[dev], "EdgeBacklogNearLimit",
             f"min({value('edge_backlog_bytes', dev)},{backlog_for})"
             f">{{$MODELMON.EDGE.BACKLOG.RATIO}}*last({value('edge_spool_max_bytes', dev)}) or "
             f"min({value('edge_backlog_oldest_sample_age_seconds', dev)},{backlog_for})"
             f">{{$MODELMON.EDGE.BACKLOG.RATIO}}*last({value('edge_spool_max_age_seconds', dev)})",
             "HIGH", "An edge spool is close to its size or age limit; samples will soon be "
             "dropped.", config.runbook_url("EdgeBacklogNearLimit"))
    cont = ("model", "version", "container")
    add_trigger(rules[cont], "ModelContainerMemoryNearLimit",
             f"min({value('container_memory_working_set_bytes', cont)},"
             f"{zabbix_duration(c.memory_limit_for)})>{number_text(c.memory_limit_ratio)}"
             f"*last({value('container_memory_limit_bytes', cont)}) and "
             f"last({value('container_memory_limit_bytes', cont)})>0", "WARNING",
             "The model container's working set is close to its memory limit.",
             config.runbook_url("ModelContainerMemoryNearLimit"))
    coll = ("collector",)
    add_trigger(rules[coll], "ModelmonCollectorFailing",
             f"max({value('collector_success', coll)},"
             f"{zabbix_duration(config.traffic.collector_failing_for)})=0", "WARNING",
             "A modelmon collector plugin keeps failing; its metrics are missing.",
             config.runbook_url("ModelmonCollectorFailing"))
    sink, events = ("sink",), catalog_kpi("log_events_total")
    for name, outcome, what in (
        ("LogShipperDroppingEvents", "dropped", "The log shipper has dropped (lost) events."),
        ("LogShipperDeadLettering", "dead_lettered",
         "The log shipper has sent events to the dead-letter store."),
    ):
        lost = add_item(rules[sink], prefix, events, events.name, rate=True, variant=outcome,
                     extra=f'outcome="{outcome}"', label_hint=f'(outcome="{outcome}")')
        add_trigger(rules[sink], name,
                 f"max({ref(lost)},{zabbix_duration(config.logs.loss_window)})>0",
                 "WARNING", what, config.runbook_url(name))


def macros(config: ThresholdsConfig) -> list[dict[str, str]]:
    q, s, e = config.quality, config.slo, config.edge
    values = {
        "{$MODELMON.METRICS.URL}": ("http://localhost:8000/metrics",
                                    "modelmon's /metrics endpoint on this host"),
        "{$MODELMON.INTERVAL}": ("1m", "how often Zabbix scrapes /metrics"),
        "{$MODELMON.HISTORY}": ("31d", "history kept for each modelmon item"),
        "{$MODELMON.SLO.AVAILABILITY}": (f"{number_text(s.availability_target)}",
                                         "thresholds slo.availability_target"),
        "{$MODELMON.SLO.LATENCY}": (f"{number_text(s.latency_target)}", "slo.latency_target"),
        "{$MODELMON.DRIFT.MAX}": (f"{number_text(q.drift_threshold)}", "quality.drift_threshold"),
        "{$MODELMON.PREDICTION_DRIFT.MAX}": (f"{number_text(q.prediction_drift_threshold)}",
                                             "quality.prediction_drift_threshold"),
        "{$MODELMON.DRIFT.FOR}": (zabbix_duration(q.drift_for), "quality.drift_for"),
        "{$MODELMON.ACCURACY.MIN}": (f"{number_text(q.min_accuracy)}", "quality.min_accuracy"),
        "{$MODELMON.ACCURACY.FOR}": (zabbix_duration(q.accuracy_for), "quality.accuracy_for"),
        "{$MODELMON.ACCURACY.MAX_DROP}": (f"{number_text(q.max_accuracy_drop)}", "quality.max_accuracy_drop"),
        "{$MODELMON.DRIFT.MIN_VALUES}": (str(q.min_drift_values), "quality.min_drift_values"),
        "{$MODELMON.FEEDBACK.MIN_LABELS}": (str(q.min_feedback_labels),
                                            "quality.min_feedback_labels"),
        "{$MODELMON.EDGE.OFFLINE_AFTER}": (zabbix_duration(e.offline_after), "edge.offline_after"),
        "{$MODELMON.EDGE.BACKLOG.RATIO}": (f"{number_text(e.backlog_limit_ratio)}",
                                           "edge.backlog_limit_ratio"),
    }
    return [{"macro": m, "value": v, "description": d} for m, (v, d) in values.items()]
