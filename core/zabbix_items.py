"""The building blocks of the Zabbix template (``modelmon.zabbix``): discovery rules per
label set, dependent item prototypes with Prometheus-pattern preprocessing, their keys,
trigger prototypes, and the stable uuids Zabbix matches objects by across imports."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modelmon.catalog import CATALOG
from modelmon.kpi import KPI

TEMPLATE_NAME = "modelmon by HTTP"
TEMPLATE_GROUP = "Templates/Applications/modelmon"
MASTER_KEY = "modelmon.metrics"
FILE_NAME = "modelmon_template.yaml"
# Labels of KPIs that exist to be summed over a fleet by recording rules.
_FLEET_ONLY_LABELS = frozenset({"bin", "previous_bin", "true_class"})
_ZABBIX_UNITS = {"seconds": "s", "bytes": "B", "ratio": "", "bool": "", "celsius": "°C"}
_RATE_UNITS = {"seconds": "", "bytes": "Bps"}


def stable_uuid(*parts: str) -> str:
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
    """Whether the template watches ``kpi`` (modelmon.zabbix says why not)."""
    return kpi.labels != () and kpi.unit != "info" and not _FLEET_ONLY_LABELS & set(kpi.labels)


@dataclass
class DiscoveryRule:
    """One discovery rule: the KPIs sharing a label set, and what hangs off it."""

    labels: tuple[str, ...]
    samples: list[str] = field(default_factory=list)  # sample names whose series it discovers
    items: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, list[str]] = field(default_factory=dict)  # unit -> item keys (graphs)


def lld_macro(label: str) -> str:
    return "{#" + label.upper() + "}"


def _selector(labels: Iterable[str], extra: str = "") -> str:
    matchers = [f'{label}="{lld_macro(label)}"' for label in labels]
    return "{" + ",".join(matchers + ([extra] if extra else [])) + "}"


def item_key(kind: str, sample: str, labels: tuple[str, ...], variant: str = "") -> str:
    params = [sample + (f":{variant}" if variant else "")] + [f'"{lld_macro(x)}"' for x in labels]
    return f"modelmon.{kind}[{','.join(params)}]"


def ref(key: str) -> str:
    return f"/{TEMPLATE_NAME}/{key}"


def add_item(rule: DiscoveryRule, prefix: str, kpi: KPI, sample: str, *, rate: bool,
          extra: str = "", function: str = "", variant: str = "", label_hint: str = "",
          match: tuple[str, ...] | None = None) -> str:
    """Add an item prototype of ``sample`` to ``rule``; ``match``: the labels its
    pattern selects on when the KPI has fewer labels than the rule (default: all)."""
    key = item_key("rate" if rate else "value", sample, rule.labels, variant)
    pattern = prefix + sample + _selector(rule.labels if match is None else match, extra)
    steps: list[dict[str, Any]] = [{
        "type": "PROMETHEUS_PATTERN",
        "parameters": [pattern, "function" if function else "value", function],
        "error_handler": "DISCARD_VALUE",  # no such series in this scrape: not an error
    }]
    if rate:
        steps.append({"type": "CHANGE_PER_SECOND", "parameters": [""]})
    else:
        # A gauge with nothing to say is NaN (feedback_mae of a classifier); Zabbix's
        # float items refuse NaN and Inf and would turn unsupported: skip those values.
        steps.append({"type": "NOT_MATCHES_REGEX", "parameters": [r"^[+-]?(NaN|Inf)$"],
                      "error_handler": "DISCARD_VALUE"})
    unit = (_RATE_UNITS.get(kpi.unit, f"{kpi.unit}/s") if rate
            else _ZABBIX_UNITS.get(kpi.unit, kpi.unit))
    what = sample + (f" {label_hint}" if label_hint else "") + (" per second" if rate else "")
    item: dict[str, Any] = {
        "uuid": stable_uuid("item", key),
        "name": f"{what} [{', '.join(lld_macro(x) for x in rule.labels)}]",
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


def add_kpi(rule: DiscoveryRule, prefix: str, kpi: KPI) -> None:
    if kpi.type == "histogram":
        rule.samples += [kpi.name + "_count"]
        add_item(rule, prefix, kpi, kpi.name + "_count", rate=True)
        add_item(rule, prefix, kpi, kpi.name + "_sum", rate=True)
    else:
        rule.samples.append(kpi.name)
        add_item(rule, prefix, kpi, kpi.name, rate=kpi.type == "counter")


def add_trigger(rule: DiscoveryRule, name: str, expression: str, priority: str, description: str,
             runbook: str) -> None:
    rule.triggers.append({
        "uuid": stable_uuid("trigger", name, expression),
        "expression": expression,
        "name": f"{name}: " + " ".join(f"{x}={lld_macro(x)}" for x in rule.labels),
        "priority": priority,
        "description": description,
        "url": runbook,
        "manual_close": "YES",
        "tags": [{"tag": "alertname", "value": name}],
    })

def catalog_kpi(name: str) -> KPI:
    return next(k for k in CATALOG if k.name == name)
