"""A Zabbix 6.0 template generated from the KPI catalog and the thresholds config.

For sites whose metrics system is Zabbix rather than Prometheus. The
template polls modelmon's ``/metrics`` with one HTTP agent item (the master);
everything else is computed by Zabbix from that one text:

- one low-level discovery rule per label set of the catalog (``model, version``,
  ``device``, ...): Prometheus-to-JSON preprocessing lists the series of the
  KPIs sharing that label set, a JavaScript step keeps one row per label
  combination, and the labels become LLD macros (``{#MODEL}``, ...);
- item prototypes per KPI, dependent on the master, with Prometheus-pattern
  preprocessing: gauges as values, counters and histograms' ``_count``/``_sum``
  as per-second rates (Zabbix keeps no counters; its functions work on rates).
  A series that is absent from a scrape (a model without feedback yet) is
  discarded, not made unsupported;
- trigger prototypes from the same numbers as the Prometheus alerts
  (``modelmon.thresholds``), as template macros a host can override;
- value maps for the 0/1 KPIs, and one graph prototype per unit and label set.

Bin counters, reference shares and the confusion matrix are left out: they
exist for recording rules that sum them over a fleet, and in Zabbix they would
be thousands of items per model. Info metrics (value always 1) are left out too.
``for:`` durations of the Prometheus alerts become the window of a ``min``/
``max``/``avg`` function, Zabbix's way of saying "for that long".

Everything is deterministic (uuids derive from names), so the committed file
changes only when the catalog or the thresholds change.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelmon.catalog import CATALOG
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig

TEMPLATE_NAME = "modelmon by HTTP"
TEMPLATE_GROUP = "Templates/Applications/modelmon"
MASTER_KEY = "modelmon.metrics"
FILE_NAME = "modelmon_template.yaml"
# Labels of KPIs that exist to be summed over a fleet by recording rules.
_FLEET_ONLY_LABELS = frozenset({"bin", "previous_bin", "true_class"})
_ZABBIX_UNITS = {"seconds": "s", "bytes": "B", "ratio": "", "bool": "", "celsius": "°C"}
_RATE_UNITS = {"seconds": "", "bytes": "Bps"}
_VALUE_MAPS = {
    "modelmon link state": {"0": "Down", "1": "Up"},
    "modelmon boolean": {"0": "No", "1": "Yes"},
}
_COLORS = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27")


def _uuid(*parts: str) -> str:
    """A stable UUIDv4-shaped id: Zabbix matches objects across imports by it."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, "modelmon/zabbix/" + "/".join(parts)).bytes
    return uuid.UUID(bytes=digest, version=4).hex


_PROM_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_PROM_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800,
                      "y": 31_536_000}


def zabbix_duration(prom: str) -> str:
    """A Prometheus duration as a Zabbix time suffix (``1m30s`` -> ``90s``)."""
    # The thresholds config stores Prometheus' compound form (prom_duration: 90s -> 1m30s).
    parts = _PROM_DURATION_PART.findall(prom)
    if not parts or "".join(n + u for n, u in parts) != prom:
        raise ValueError(f"{prom!r} is not a Prometheus duration such as 1m30s")
    seconds = round(sum(float(n) * _PROM_UNIT_SECONDS[u] for n, u in parts))
    for suffix, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def included(kpi: KPI) -> bool:
    """Whether the template watches ``kpi`` (see the module docstring for why not)."""
    return kpi.labels != () and kpi.unit != "info" and not _FLEET_ONLY_LABELS & set(kpi.labels)


@dataclass
class _Rule:
    """One discovery rule: the KPIs sharing a label set, and what hangs off it."""

    labels: tuple[str, ...]
    samples: list[str] = field(default_factory=list)  # sample names whose series it discovers
    items: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, list[str]] = field(default_factory=dict)  # unit -> item keys (graphs)


def _macro(label: str) -> str:
    return "{#" + label.upper() + "}"


def _selector(labels: Iterable[str], extra: str = "") -> str:
    matchers = [f'{label}="{_macro(label)}"' for label in labels]
    return "{" + ",".join(matchers + ([extra] if extra else [])) + "}"


def _key(kind: str, sample: str, labels: tuple[str, ...], variant: str = "") -> str:
    params = [sample + (f":{variant}" if variant else "")] + [f'"{_macro(x)}"' for x in labels]
    return f"modelmon.{kind}[{','.join(params)}]"


def _ref(key: str) -> str:
    return f"/{TEMPLATE_NAME}/{key}"


def _item(rule: _Rule, prefix: str, kpi: KPI, sample: str, *, rate: bool,
          extra: str = "", function: str = "", variant: str = "", label_hint: str = "",
          match: tuple[str, ...] | None = None) -> str:
    """Add an item prototype of ``sample`` to ``rule``; ``match``: the labels its
    pattern selects on when the KPI has fewer labels than the rule (default: all)."""
    key = _key("rate" if rate else "value", sample, rule.labels, variant)
    pattern = prefix + sample + _selector(rule.labels if match is None else match, extra)
    steps: list[dict[str, Any]] = [{
        "type": "PROMETHEUS_PATTERN",
        "parameters": [pattern, "function" if function else "value", function],
        "error_handler": "DISCARD_VALUE",  # no such series in this scrape: not an error
    }]
    if rate:
        steps.append({"type": "CHANGE_PER_SECOND", "parameters": [""]})
    unit = (_RATE_UNITS.get(kpi.unit, f"{kpi.unit}/s") if rate
            else _ZABBIX_UNITS.get(kpi.unit, kpi.unit))
    what = sample + (f" {label_hint}" if label_hint else "") + (" per second" if rate else "")
    item: dict[str, Any] = {
        "uuid": _uuid("item", key),
        "name": f"{what} [{', '.join(_macro(x) for x in rule.labels)}]",
        "type": "DEPENDENT",
        "key": key,
        "delay": "0",
        "history": "{$MODELMON.HISTORY}",
        "value_type": "FLOAT",
        "units": unit,
        "description": kpi.help,
        "preprocessing": steps,
        "master_item": {"key": MASTER_KEY},
        "tags": [{"tag": "component", "value": kpi.group}],
    }
    if kpi.unit == "bool":
        item["valuemap"] = {"name": "modelmon link state" if kpi.name == "edge_link_up"
                            else "modelmon boolean"}
    rule.items.append(item)
    rule.units.setdefault(unit, []).append(key)
    return key


def _add_kpi(rule: _Rule, prefix: str, kpi: KPI) -> None:
    if kpi.type == "histogram":
        rule.samples += [kpi.name + "_count"]
        _item(rule, prefix, kpi, kpi.name + "_count", rate=True)
        _item(rule, prefix, kpi, kpi.name + "_sum", rate=True)
    else:
        rule.samples.append(kpi.name)
        _item(rule, prefix, kpi, kpi.name, rate=kpi.type == "counter")


def _trigger(rule: _Rule, name: str, expression: str, priority: str, description: str,
             runbook: str) -> None:
    rule.triggers.append({
        "uuid": _uuid("trigger", name, expression),
        "expression": expression,
        "name": f"{name}: " + " ".join(f"{x}={_macro(x)}" for x in rule.labels),
        "priority": priority,
        "description": description,
        "url": runbook,
        "manual_close": "YES",
        "tags": [{"tag": "alertname", "value": name}],
    })


def _slo_triggers(rule: _Rule, prefix: str, config: ThresholdsConfig) -> None:
    """The multi-window burn-rate alerts of ``modelmon.alerting.slo``, per model version."""
    requests, duration = _kpi("inference_requests_total"), _kpi("inference_duration_seconds")
    calls = _item(rule, prefix, requests, requests.name, rate=True, function="sum",
                  variant="all", label_hint="(all outcomes)")
    errors = _item(rule, prefix, requests, requests.name, rate=True, function="sum",
                   variant="error", extra='outcome="error"', label_hint='(outcome="error")')
    objective = repr(float(config.slo.latency_objective_seconds))
    fast = _item(rule, prefix, duration, duration.name + "_bucket", rate=True,
                 extra=f'le="{objective}"', variant=f"le{objective}",
                 label_hint=f'(le="{objective}")')
    count = _key("rate", duration.name + "_count", rule.labels)
    for windows, priority, severity, speed in (
            (config.slo.page_windows, "HIGH", "page", "Fast"),
            (config.slo.ticket_windows, "WARNING", "ticket", "Slow")):
        def burn(term: str, windows: tuple[tuple[str, str, float], ...] = windows) -> str:
            # Prometheus' multi-window check: both the long and the short window burn fast.
            return " or ".join(
                "(" + " and ".join(term.replace("@W", zabbix_duration(w)).replace("@F", f"{factor:g}")
                                   for w in (long, short)) + ")"
                for long, short, factor in windows)

        _trigger(rule, f"ModelErrorBudgetBurning{speed}",
                 burn(f"avg({_ref(errors)},@W)>@F*(1-{{$MODELMON.SLO.AVAILABILITY}})"
                      f"*avg({_ref(calls)},@W)"), priority,
                 "Errors consume the availability error budget "
                 f"({severity} burn-rate windows {list(windows)}).",
                 config.runbook_url(f"ModelErrorBudgetBurning{speed}"))
        _trigger(rule, f"ModelLatencyBudgetBurning{speed}",
                 burn(f"avg({_ref(count)},@W)-avg({_ref(fast)},@W)>@F"
                      f"*(1-{{$MODELMON.SLO.LATENCY}})*avg({_ref(count)},@W)"), priority,
                 f"Calls slower than {objective}s consume the latency error budget "
                 f"({severity} burn-rate windows {list(windows)}).",
                 config.runbook_url(f"ModelLatencyBudgetBurning{speed}"))


def _kpi(name: str) -> KPI:
    return next(k for k in CATALOG if k.name == name)


def _threshold_triggers(rules: dict[tuple[str, ...], _Rule], config: ThresholdsConfig) -> None:
    prefix, e, c = config.prefix, config.edge, config.containers

    def value(name: str, labels: tuple[str, ...]) -> str:
        return _ref(_key("value", name, labels))

    mv = ("model", "version")
    rows = _kpi("drift_window_rows")
    for labels, kpi_name, name, macro, what in (
        (("model", "version", "feature", "method"), "feature_drift", "ModelFeatureDrift",
         "DRIFT", "A feature's input distribution has drifted from the reference profile."),
        (("model", "version", "method"), "prediction_drift", "ModelPredictionDrift",
         "PREDICTION_DRIFT", "The distribution of the model's predictions has shifted from "
         "its reference."),
    ):
        # PSI over a handful of values is noise: the alert waits for min_drift_values rows,
        # read here per discovered row from the model version's drift_window_rows.
        window_rows = _item(rules[labels], prefix, rows, rows.name, rate=False,
                            variant=kpi_name, match=mv, label_hint="(drift window)")
        _trigger(rules[labels], name,
                 f"min({value(kpi_name, labels)},{{$MODELMON.DRIFT.FOR}})"
                 f">{{$MODELMON.{macro}.MAX}} and last({_ref(window_rows)})"
                 f">={{$MODELMON.DRIFT.MIN_VALUES}}", "WARNING", what, config.runbook_url(name))
    acc = value("feedback_accuracy", mv)
    _trigger(rules[mv], "ModelAccuracyDrop",
             f"(max({acc},{{$MODELMON.ACCURACY.FOR}})<{{$MODELMON.ACCURACY.MIN}} or "
             f"max({acc},{{$MODELMON.ACCURACY.FOR}})<avg({acc},1d)-{{$MODELMON.ACCURACY.MAX_DROP}})"
             f" and last({value('feedback_window_labels', mv)})>={{$MODELMON.FEEDBACK.MIN_LABELS}}",
             "WARNING", "Accuracy against ground-truth labels is below the minimum, or has "
             "dropped below its 1d average.", config.runbook_url("ModelAccuracyDrop"))
    dev = ("device",)
    _trigger(rules[dev], "EdgeDeviceOffline",
             f"last({value('edge_last_send_success_timestamp_seconds', dev)})"
             f"<now()-{{$MODELMON.EDGE.OFFLINE_AFTER}}", "WARNING",
             "The device has not delivered a batch for longer than the offline threshold.",
             config.runbook_url("EdgeDeviceOffline"))
    backlog_for = zabbix_duration(e.backlog_limit_for)
    _trigger(rules[dev], "EdgeBacklogNearLimit",
             f"min({value('edge_backlog_bytes', dev)},{backlog_for})"
             f">{{$MODELMON.EDGE.BACKLOG.RATIO}}*last({value('edge_spool_max_bytes', dev)}) or "
             f"min({value('edge_backlog_oldest_sample_age_seconds', dev)},{backlog_for})"
             f">{{$MODELMON.EDGE.BACKLOG.RATIO}}*last({value('edge_spool_max_age_seconds', dev)})",
             "HIGH", "An edge spool is close to its size or age limit; samples will soon be "
             "dropped.", config.runbook_url("EdgeBacklogNearLimit"))
    cont = ("model", "version", "container")
    _trigger(rules[cont], "ModelContainerMemoryNearLimit",
             f"min({value('container_memory_working_set_bytes', cont)},"
             f"{zabbix_duration(c.memory_limit_for)})>{c.memory_limit_ratio:g}"
             f"*last({value('container_memory_limit_bytes', cont)}) and "
             f"last({value('container_memory_limit_bytes', cont)})>0", "WARNING",
             "The model container's working set is close to its memory limit.",
             config.runbook_url("ModelContainerMemoryNearLimit"))
    coll = ("collector",)
    _trigger(rules[coll], "ModelmonCollectorFailing",
             f"max({value('collector_success', coll)},"
             f"{zabbix_duration(config.traffic.collector_failing_for)})=0", "WARNING",
             "A modelmon collector plugin keeps failing; its metrics are missing.",
             config.runbook_url("ModelmonCollectorFailing"))
    sink, events = ("sink",), _kpi("log_events_total")
    for name, outcome, what in (
        ("LogShipperDroppingEvents", "dropped", "The log shipper has dropped (lost) events."),
        ("LogShipperDeadLettering", "dead_lettered",
         "The log shipper has sent events to the dead-letter store."),
    ):
        lost = _item(rules[sink], prefix, events, events.name, rate=True, variant=outcome,
                     extra=f'outcome="{outcome}"', label_hint=f'(outcome="{outcome}")')
        _trigger(rules[sink], name,
                 f"max({_ref(lost)},{zabbix_duration(config.logs.loss_window)})>0",
                 "WARNING", what, config.runbook_url(name))


def _macros(config: ThresholdsConfig) -> list[dict[str, str]]:
    q, s, e = config.quality, config.slo, config.edge
    values = {
        "{$MODELMON.METRICS.URL}": ("http://localhost:8000/metrics",
                                    "modelmon's /metrics endpoint on this host"),
        "{$MODELMON.INTERVAL}": ("1m", "how often Zabbix scrapes /metrics"),
        "{$MODELMON.HISTORY}": ("31d", "history kept for each modelmon item"),
        "{$MODELMON.SLO.AVAILABILITY}": (f"{s.availability_target:g}",
                                         "thresholds slo.availability_target"),
        "{$MODELMON.SLO.LATENCY}": (f"{s.latency_target:g}", "slo.latency_target"),
        "{$MODELMON.DRIFT.MAX}": (f"{q.drift_threshold:g}", "quality.drift_threshold"),
        "{$MODELMON.PREDICTION_DRIFT.MAX}": (f"{q.prediction_drift_threshold:g}",
                                             "quality.prediction_drift_threshold"),
        "{$MODELMON.DRIFT.FOR}": (zabbix_duration(q.drift_for), "quality.drift_for"),
        "{$MODELMON.ACCURACY.MIN}": (f"{q.min_accuracy:g}", "quality.min_accuracy"),
        "{$MODELMON.ACCURACY.FOR}": (zabbix_duration(q.accuracy_for), "quality.accuracy_for"),
        "{$MODELMON.ACCURACY.MAX_DROP}": (f"{q.max_accuracy_drop:g}", "quality.max_accuracy_drop"),
        "{$MODELMON.DRIFT.MIN_VALUES}": (str(q.min_drift_values), "quality.min_drift_values"),
        "{$MODELMON.FEEDBACK.MIN_LABELS}": (str(q.min_feedback_labels),
                                            "quality.min_feedback_labels"),
        "{$MODELMON.EDGE.OFFLINE_AFTER}": (zabbix_duration(e.offline_after), "edge.offline_after"),
        "{$MODELMON.EDGE.BACKLOG.RATIO}": (f"{e.backlog_limit_ratio:g}",
                                           "edge.backlog_limit_ratio"),
    }
    return [{"macro": m, "value": v, "description": d} for m, (v, d) in values.items()]


_DEDUPE_JS = """var rows = JSON.parse(value), seen = {}, out = [], labels = %s;
for (var i = 0; i < rows.length; i++) {
    var row = {}, id = [];
    for (var j = 0; j < labels.length; j++) {
        row[labels[j]] = rows[i].labels[labels[j]] || '';
        id.push(row[labels[j]]);
    }
    id = id.join('\\u0000');
    if (!seen[id]) { seen[id] = true; out.push(row); }
}
return JSON.stringify(out);"""


def _discovery_rule(prefix: str, rule: _Rule) -> dict[str, Any]:
    names = "|".join(sorted(rule.samples))
    labels_list = "[" + ", ".join(f"'{x}'" for x in rule.labels) + "]"
    graphs = [{
        "uuid": _uuid("graph", *rule.labels, unit),
        "name": f"modelmon {unit or 'ratio'} [" + ", ".join(_macro(x) for x in rule.labels) + "]",
        "graph_items": [{"sortorder": str(i), "color": _COLORS[i % len(_COLORS)],
                         "item": {"host": TEMPLATE_NAME, "key": key}}
                        for i, key in enumerate(keys)],
    } for unit, keys in sorted(rule.units.items())]
    return {
        "uuid": _uuid("discovery", *rule.labels),
        "name": "modelmon series by " + ", ".join(rule.labels),
        "type": "DEPENDENT",
        "key": "modelmon.discovery[" + ",".join(rule.labels) + "]",
        "delay": "0",
        "lifetime": "7d",
        "description": "One entity per combination of these labels among "
                       + ", ".join(prefix + s for s in sorted(rule.samples)),
        "item_prototypes": rule.items,
        "trigger_prototypes": rule.triggers,
        "graph_prototypes": graphs,
        "master_item": {"key": MASTER_KEY},
        "lld_macro_paths": [{"lld_macro": _macro(x), "path": f"$['{x}']"} for x in rule.labels],
        "preprocessing": [
            {"type": "PROMETHEUS_TO_JSON",
             "parameters": ['{__name__=~"^' + prefix + "(" + names + ')$"}']},
            {"type": "JAVASCRIPT", "parameters": [_DEDUPE_JS % labels_list]},
        ],
    }


def build_template(config: ThresholdsConfig) -> dict[str, Any]:
    """The Zabbix 6.0 export (``configuration.import`` format) as plain data."""
    prefix = config.prefix
    rules: dict[tuple[str, ...], _Rule] = {}
    for kpi in CATALOG:
        if included(kpi):
            _add_kpi(rules.setdefault(kpi.labels, _Rule(kpi.labels)), prefix, kpi)
    rules.setdefault(("model", "version"), _Rule(("model", "version")))
    _slo_triggers(rules[("model", "version")], prefix, config)
    _threshold_triggers(rules, config)
    master = {
        "uuid": _uuid("item", MASTER_KEY),
        "name": "modelmon: get /metrics",
        "type": "HTTP_AGENT",
        "key": MASTER_KEY,
        "delay": "{$MODELMON.INTERVAL}",
        "history": "0",
        "trends": "0",
        "value_type": "TEXT",
        "url": "{$MODELMON.METRICS.URL}",
        "description": "The Prometheus exposition of modelmon: every other item reads it.",
        "tags": [{"tag": "component", "value": "raw"}],
    }
    unreported = _kpi("containers_unreported")
    lone = {
        "uuid": _uuid("item", unreported.name),
        "name": unreported.name, "type": "DEPENDENT",
        "key": f"modelmon.value[{unreported.name}]", "delay": "0",
        "history": "{$MODELMON.HISTORY}", "value_type": "FLOAT",
        "description": unreported.help, "master_item": {"key": MASTER_KEY},
        "preprocessing": [{"type": "PROMETHEUS_PATTERN",
                           "parameters": [prefix + unreported.name, "value", ""],
                           "error_handler": "DISCARD_VALUE"}],
        "tags": [{"tag": "component", "value": unreported.group}],
    }
    return {"zabbix_export": {
        "version": "6.0",
        "groups": [{"uuid": _uuid("group", TEMPLATE_GROUP), "name": TEMPLATE_GROUP}],
        "templates": [{
            "uuid": _uuid("template", TEMPLATE_NAME),
            "template": TEMPLATE_NAME,
            "name": TEMPLATE_NAME,
            "description": "ML model KPIs from modelmon's /metrics (generated by "
                           "'modelmon zabbix template' from the KPI catalog; do not edit).",
            "groups": [{"name": TEMPLATE_GROUP}],
            "items": [master, lone],
            "discovery_rules": [_discovery_rule(prefix, r) for _, r in sorted(rules.items())],
            "macros": _macros(config),
            "valuemaps": [{
                "uuid": _uuid("valuemap", name), "name": name,
                "mappings": [{"value": k, "newvalue": v} for k, v in m.items()],
            } for name, m in _VALUE_MAPS.items()],
        }],
    }}


def render_template(config: ThresholdsConfig) -> str:
    """The template as Zabbix 6.0 YAML export text."""
    header = ("# Generated by 'modelmon zabbix template' from the KPI catalog and the thresholds"
              " config. Do not edit.\n")
    return header + yaml.safe_dump(build_template(config), sort_keys=False, allow_unicode=True,
                                   width=100)
