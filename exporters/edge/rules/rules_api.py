"""Prometheus's rules, alerts and metric metadata endpoints over the agent.

``GET /api/v1/rules`` (``type=alert|record``), ``GET /api/v1/alerts`` and
``GET /api/v1/metadata`` (``limit``, ``metric``) answer with the JSON of
Prometheus 2.42's ``web/api/v1/api.go``, so a local Grafana's alert list and
rule views, or an operator on an offline device, see the device's rules as
they would see a Prometheus's:

- groups sorted by file then name (``Manager.RuleGroups``), rules in file
  order; a group's ``interval``, ``limit``, ``evaluationTime`` (seconds) and
  ``lastEvaluation`` (when its last evaluation started, wall clock);
- a rule's ``query`` is its expression as Prometheus prints it
  (``query_text``), its ``labels`` and ``annotations`` the templates as
  written, ``health`` ``unknown`` until its first evaluation, then ``ok`` or
  ``err`` with ``lastError``; an alerting rule's ``state`` is the highest of
  its alerts';
- an alert's ``value`` is printed as Go's ``FormatFloat(v, 'e', -1, 64)``,
  times are RFC 3339 with nanoseconds, in UTC; ``keepFiringSince`` only
  while ``keep_firing_for`` holds it; alerts sorted by their labels
  (Prometheus's order is its map's);
- ``rule_name[]``, ``rule_group[]`` and ``file[]`` (which 2.42 ignores)
  filter as Prometheus 2.44 does, dropping the groups left without rules.

A ``type`` other than ``alert`` or ``record`` and a ``limit`` that is not a
number are ``400 bad_data`` with Prometheus's messages; other parameters are
ignored, as Prometheus ignores them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelmon.exporters.edge.metric_metadata import MetricMetadata
from modelmon.exporters.edge.promql.parsing import parse
from modelmon.exporters.edge.rules.evaluation import FIRING, INACTIVE, PENDING, Alert
from modelmon.exporters.edge.rules.files import AlertingRule
from modelmon.exporters.edge.rules.float_text import exponent
from modelmon.exporters.edge.rules.query_text import expr_text

if TYPE_CHECKING:
    from modelmon.exporters.edge.rules.evaluation import RuleGroupEvaluator
    from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

RULES_PATHS = ("/api/v1/rules", "/api/v1/alerts", "/api/v1/metadata")
_STATE_ORDER = {INACTIVE: 0, PENDING: 1, FIRING: 2}
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 1 << 63
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, never evaluated


class RulesAPIError(ValueError):
    """A request Prometheus answers with ``400 bad_data``."""


def rfc3339(ns: int) -> str:
    """Go's ``time.Time`` JSON (RFC 3339, nanoseconds without trailing zeros), UTC."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def _seconds(ms: int) -> float | int:
    # Go's JSON prints 15.0 as 15: keep whole seconds whole.
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


@functools.lru_cache(maxsize=4096)
def _query(text: str) -> str:
    return expr_text(parse(text))


def _labels(labels: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(labels.items()))


def _alert(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": _labels(dict(alert.labels)), "annotations": _labels(alert.annotations),
        "state": alert.state, "activeAt": rfc3339(alert.active_at_ms * 1_000_000)}
    if alert.keep_firing_since_ms is not None:
        out["keepFiringSince"] = rfc3339(alert.keep_firing_since_ms * 1_000_000)
    out["value"] = exponent(alert.value)
    return out


def _active(evaluator: RuleGroupEvaluator) -> dict[int, list[Alert]]:
    """Each rule's alerts Prometheus calls active (pending or firing, not resolved),
    by rule index, sorted by their labels."""
    out: dict[int, list[Alert]] = {}
    for index, _, alert in evaluator.alerts_by_rule():
        if alert.state != INACTIVE:
            out.setdefault(index, []).append(alert)
    for alerts in out.values():
        alerts.sort(key=lambda a: a.labels)
    return out


def _rule(evaluator: RuleGroupEvaluator, index: int, active: dict[int, list[Alert]]
          ) -> dict[str, Any]:
    rule = evaluator.group.rules[index]
    status = evaluator.rule_status[index]
    tail: dict[str, Any] = {"health": status.health}
    if status.last_error:
        tail["lastError"] = status.last_error
    tail["evaluationTime"] = status.evaluation_seconds
    tail["lastEvaluation"] = rfc3339(status.last_evaluation_ns) if status.last_evaluation_ns \
        else ZERO_TIME
    if isinstance(rule, AlertingRule):
        alerts = active.get(index, [])
        state = max((a.state for a in alerts), key=_STATE_ORDER.__getitem__, default=INACTIVE)
        return {"state": state, "name": rule.name, "query": _query(rule.query.text),
                "duration": _seconds(rule.for_ms),
                "keepFiringFor": _seconds(rule.keep_firing_for_ms),
                "labels": _labels({n: t.source for n, t in rule.labels.items()}),
                "annotations": _labels({n: t.source for n, t in rule.annotations.items()}),
                "alerts": [_alert(a) for a in alerts], **tail, "type": "alerting"}
    out: dict[str, Any] = {"name": rule.name, "query": _query(rule.query.text)}
    if rule.labels:  # `labels,omitempty` for recording rules only
        out["labels"] = _labels(rule.labels)
    return {**out, **tail, "type": "recording"}


def _sorted_groups(runner: EdgeRuleRunner | None) -> list[tuple[RuleGroupEvaluator, int]]:
    if runner is None:
        return []
    return sorted(runner.schedule(), key=lambda g: (g[0].group.file, g[0].group.name))


def rules(runner: EdgeRuleRunner | None, params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The ``data`` of ``/api/v1/rules`` (the caller holds the runner's lock)."""
    kind = (params.get("type") or [""])[0].lower()
    if kind not in ("", "alert", "record"):
        raise RulesAPIError(f'invalid parameter "type": not supported value "{kind[:80]}"')
    names, groups_wanted, files = (set(params.get(key) or ()) for key in
                                   ("rule_name[]", "rule_group[]", "file[]"))
    filtered = bool(names or groups_wanted or files)
    out = []
    for evaluator, interval_ms in _sorted_groups(runner):
        group = evaluator.group
        if (groups_wanted and group.name not in groups_wanted) or \
                (files and group.file not in files):
            continue
        active = _active(evaluator)
        shown = [_rule(evaluator, i, active) for i, rule in enumerate(group.rules)
                 if (not names or rule.name in names) and
                 (kind == "" or (kind == "alert") == isinstance(rule, AlertingRule))]
        if filtered and not shown:
            continue  # Prometheus 2.44 drops a group its filters emptied
        out.append({
            "name": group.name, "file": group.file, "rules": shown,
            "interval": _seconds(interval_ms), "limit": group.limit,
            "evaluationTime": evaluator.evaluation_seconds,
            "lastEvaluation": rfc3339(evaluator.last_evaluation_ns)
            if evaluator.last_evaluation_ns else ZERO_TIME})
    return {"groups": out}


def alerts(runner: EdgeRuleRunner | None) -> dict[str, Any]:
    """The ``data`` of ``/api/v1/alerts`` (the caller holds the runner's lock)."""
    out: list[dict[str, Any]] = []
    for evaluator, _ in _sorted_groups(runner):
        active = _active(evaluator)
        for i, rule in enumerate(evaluator.group.rules):
            if isinstance(rule, AlertingRule):
                out.extend(_alert(a) for a in active.get(i, []))
    return {"alerts": out}


def metadata(store: MetricMetadata | None, params: Mapping[str, Sequence[str]]
             ) -> dict[str, list[dict[str, str]]]:
    """The ``data`` of ``/api/v1/metadata``: ``{family: [{type, help, unit}]}``, at
    most ``limit`` families (a negative limit: all), or only ``metric``."""
    limit = -1
    text = (params.get("limit") or [""])[0]
    if text:
        if not _GO_INT.fullmatch(text) or not -_INT64 <= int(text) < _INT64:
            raise RulesAPIError("limit must be a number")
        limit = int(text)
    metric = (params.get("metric") or [""])[0]
    families = store.snapshot() if store is not None else {}
    if metric:
        families = {metric: families[metric]} if metric in families else {}
    out: dict[str, list[dict[str, str]]] = {}
    for name, (kind, help_text, unit) in families.items():
        if 0 <= limit <= len(out):
            break
        out[name] = [{"type": kind, "help": help_text, "unit": unit}]
    return out
