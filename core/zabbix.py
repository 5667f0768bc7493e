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

from typing import Any

import yaml

from modelmon.catalog import CATALOG
from modelmon.thresholds import ThresholdsConfig
from modelmon.zabbix_items import (
    FILE_NAME,
    MASTER_KEY,
    TEMPLATE_GROUP,
    TEMPLATE_NAME,
    DiscoveryRule,
    add_kpi,
    catalog_kpi,
    included,
    lld_macro,
    stable_uuid,
    zabbix_duration,
)
from modelmon.zabbix_triggers import add_triggers, macros

_VALUE_MAPS = {
    "modelmon link state": {"0": "Down", "1": "Up"},
    "modelmon boolean": {"0": "No", "1": "Yes"},
}
_COLORS = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27")

__all__ = ["FILE_NAME", "MASTER_KEY", "TEMPLATE_NAME", "build_template", "included",
           "render_template", "zabbix_duration"]

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


def _discovery_rule(prefix: str, rule: DiscoveryRule) -> dict[str, Any]:
    names = "|".join(sorted(rule.samples))
    labels_list = "[" + ", ".join(f"'{x}'" for x in rule.labels) + "]"
    graphs = [{
        "uuid": stable_uuid("graph", *rule.labels, unit),
        "name": f"modelmon {unit or 'ratio'} [" + ", ".join(lld_macro(x) for x in rule.labels) + "]",
        "graph_items": [{"sortorder": str(i), "color": _COLORS[i % len(_COLORS)],
                         "item": {"host": TEMPLATE_NAME, "key": key}}
                        for i, key in enumerate(keys)],
    } for unit, keys in sorted(rule.units.items())]
    return {
        "uuid": stable_uuid("discovery", *rule.labels),
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
        "lld_macro_paths": [{"lld_macro": lld_macro(x), "path": f"$['{x}']"} for x in rule.labels],
        "preprocessing": [
            {"type": "PROMETHEUS_TO_JSON",
             "parameters": ['{__name__=~"^' + prefix + "(" + names + ')$"}']},
            {"type": "JAVASCRIPT", "parameters": [_DEDUPE_JS % labels_list]},
        ],
    }


def build_template(config: ThresholdsConfig) -> dict[str, Any]:
    """The Zabbix 6.0 export (``configuration.import`` format) as plain data."""
    prefix = config.prefix
    rules: dict[tuple[str, ...], DiscoveryRule] = {}
    for kpi in CATALOG:
        if included(kpi):
            add_kpi(rules.setdefault(kpi.labels, DiscoveryRule(kpi.labels)), prefix, kpi)
    add_triggers(rules, config)
    master = {
        "uuid": stable_uuid("item", MASTER_KEY),
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
    unreported = catalog_kpi("containers_unreported")
    lone = {
        "uuid": stable_uuid("item", unreported.name),
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
        "groups": [{"uuid": stable_uuid("group", TEMPLATE_GROUP), "name": TEMPLATE_GROUP}],
        "templates": [{
            "uuid": stable_uuid("template", TEMPLATE_NAME),
            "template": TEMPLATE_NAME,
            "name": TEMPLATE_NAME,
            "description": "ML model KPIs from modelmon's /metrics (generated by "
                           "'modelmon zabbix template' from the KPI catalog; do not edit).",
            "groups": [{"name": TEMPLATE_GROUP}],
            "items": [master, lone],
            "discovery_rules": [_discovery_rule(prefix, r) for _, r in sorted(rules.items())],
            "macros": macros(config),
            "valuemaps": [{
                "uuid": stable_uuid("valuemap", name), "name": name,
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
