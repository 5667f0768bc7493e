"""Evaluating a rule group at an instant, with Prometheus 2.42's semantics
(``rules/manager.go`` ``Group.Eval``, ``rules/recording.go``,
``rules/alerting.go``).

Rules run in order; each one's output is appended to the storage at the
evaluation time, so later rules see it. A series a rule produced last time
and not this time gets a staleness marker. An alert is pending from the
first evaluation that returns it, firing once it has been returned for
``for``, kept firing ``keep_firing_for`` after its expression stops returning
it, then resolved (kept 15 minutes for the notifier, as Prometheus does).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import (
    STALE_NAN,
    MemoryStorage,
    PromQLError,
    Sample,
    Scalar,
)
from modelmon.exporters.edge.promql.values import METRIC_NAME
from modelmon.exporters.edge.rules.files import AlertingRule, RecordingRule, RuleGroup
from modelmon.exporters.edge.rules.templates import TemplateData

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RESOLVED_RETENTION_MS = 15 * 60_000
# The per-rule memos below map a series' label set to what the rule makes of it;
# series come and go, so a memo that grows past this is started afresh.
_MEMO_LIMIT = 20_000
PENDING, FIRING, INACTIVE = "pending", "firing", "inactive"


@dataclass
class Alert:
    labels: LabelSet  # alertname included
    annotations: dict[str, str]
    active_at_ms: int
    value: float
    state: str = PENDING
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None
    # For the notifier (modelmon.exporters.edge.alerting): the rule's expression
    # (generatorURL), when it was last sent and until when that send is valid.
    expr: str = ""
    last_sent_at_ms: int | None = None
    valid_until_ms: int | None = None


@dataclass
class RuleStatus:
    """What Prometheus's rules API says of a rule's last evaluation: its health
    (``unknown`` before the first, ``ok``, ``err``), the error, when it started
    (wall clock, ns) and how long it took."""

    health: str = "unknown"
    last_error: str = ""
    last_evaluation_ns: int = 0
    evaluation_seconds: float = 0.0


@dataclass
class GroupResult:
    """What one evaluation produced: samples to store and remote-write (recording
    results, ``ALERTS``, ``ALERTS_FOR_STATE`` and staleness markers, all at ``t_ms``),
    the alerts to notify about, and per-rule errors (the rule is skipped)."""

    t_ms: int
    samples: list[tuple[LabelSet, float]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class RuleGroupEvaluator:
    def __init__(self, group: RuleGroup, storage: MemoryStorage,
                 external_labels: Mapping[str, str] | None = None,
                 label_results: bool = False) -> None:
        self.group = group
        self.storage = storage
        self.external_labels = dict(external_labels or {})
        # On the device the results are stored as they are remote-written, with the
        # device labels: the local window then answers as the cloud does.
        self._result_labels = tuple(sorted(self.external_labels.items())) if label_results \
            else ()
        self._previous: list[set[LabelSet]] = [set() for _ in group.rules]
        self._active: list[dict[LabelSet, Alert]] = [{} for _ in group.rules]
        # Rules run every interval over mostly the same series: what depends only on a
        # series' labels (and, for annotations, its value) is computed once.
        self._keys: list[dict[LabelSet, LabelSet]] = [{} for _ in group.rules]
        self._annotations: list[dict[LabelSet, tuple[float, dict[str, str]]]] = [
            {} for _ in group.rules]
        self._alert_series: list[dict[tuple[LabelSet, str], tuple[LabelSet, LabelSet]]] = [
            {} for _ in group.rules]
        self._labelled: dict[LabelSet, LabelSet] = {}
        self._static_labels = [
            isinstance(r, AlertingRule) and all(t.static is not None for t in r.labels.values())
            for r in group.rules]
        # For the rules API (rules_api): each rule's last evaluation, and the group's.
        self.rule_status = [RuleStatus() for _ in group.rules]
        self.last_evaluation_ns = 0
        self.evaluation_seconds = 0.0

    def evaluate(self, t_ms: int) -> GroupResult:
        result = GroupResult(t_ms)
        group_started_ns, group_clock = time.time_ns(), time.perf_counter()
        for i, rule in enumerate(self.group.rules):
            status = self.rule_status[i]
            status.last_evaluation_ns, clock = time.time_ns(), time.perf_counter()
            try:
                if isinstance(rule, RecordingRule):
                    produced = self._record(i, rule, t_ms)
                else:
                    produced = self._alert(i, rule, t_ms, result)
            except PromQLError as exc:
                result.errors[rule.name] = str(exc)
                status.health, status.last_error = "err", str(exc)
                status.evaluation_seconds = time.perf_counter() - clock
                log.warning("rule %r in group %r failed at %d ms: %s", rule.name,
                            self.group.name, t_ms, exc)
                continue
            status.health, status.last_error = "ok", ""
            seen = set()
            for labels, value in produced:
                seen.add(labels)
                self._append(result, labels, value)
            for labels in sorted(self._previous[i] - seen):
                self._append(result, labels, STALE_NAN)
            self._previous[i] = seen
            status.evaluation_seconds = time.perf_counter() - clock
        self.last_evaluation_ns = group_started_ns
        self.evaluation_seconds = time.perf_counter() - group_clock
        return result

    def active_alerts(self) -> list[Alert]:
        return [a for alerts in self._active for a in alerts.values()]

    def alerts_by_rule(self) -> list[tuple[int, str, Alert]]:
        """(rule index, rule name, alert) of every alert held: pending, firing, and
        resolved ones kept for the notifier (what a restart must not forget)."""
        return [(i, self.group.rules[i].name, a) for i, alerts in enumerate(self._active)
                for a in alerts.values()]

    def copy_state(self, old: RuleGroupEvaluator) -> None:
        """Take over what ``old`` (this group before a reload) holds, as Prometheus's
        ``Group.CopyState``: a rule with the same name and labels as one of the old
        group (the first unclaimed one) keeps its alerts (their ``activeAt``, firing
        time, last send) and the series it produced last time."""
        self.last_evaluation_ns = old.last_evaluation_ns
        self.evaluation_seconds = old.evaluation_seconds
        unclaimed: dict[tuple[str, str], list[int]] = {}
        for i, rule in enumerate(old.group.rules):
            unclaimed.setdefault(_name_and_labels(rule), []).append(i)
        for i, rule in enumerate(self.group.rules):
            indexes = unclaimed.get(_name_and_labels(rule))
            if not indexes:
                continue
            j = indexes.pop(0)
            self._previous[i] = set(old._previous[j])
            if isinstance(rule, AlertingRule) and isinstance(old.group.rules[j], AlertingRule):
                self._active[i] = dict(old._active[j])

    def restore_alert(self, index: int, alert: Alert) -> None:
        """Hold ``alert`` for rule ``index`` as if an earlier evaluation had made it
        (an agent restart): the next evaluation carries it on, or resolves it."""
        self._active[index][alert.labels] = alert

    def _append(self, result: GroupResult, labels: LabelSet, value: float) -> None:
        if self._result_labels:
            labelled = self._labelled.get(labels)
            if labelled is None:
                present = {n for n, _ in labels}
                missing = [p for p in self._result_labels if p[0] not in present and p[1]]
                labelled = tuple(sorted((*labels, *missing))) if missing else labels
                if len(self._labelled) >= _MEMO_LIMIT:
                    self._labelled.clear()
                self._labelled[labels] = labelled
            labels = labelled
        self.storage.append(labels, result.t_ms, value)
        result.samples.append((labels, value))

    def _query(self, rule: RecordingRule | AlertingRule, t_ms: int) -> list[Sample]:
        value = rule.query.evaluate(self.storage, t_ms)
        if isinstance(value, Scalar):
            return [Sample((), value.value)]
        return value

    def _record(self, index: int, rule: RecordingRule, t_ms: int
                ) -> list[tuple[LabelSet, float]]:
        keys = _memo(self._keys, index)
        out: list[tuple[LabelSet, float]] = []
        for s in self._query(rule, t_ms):
            key = keys.get(s.labels)
            if key is None:
                key = keys[s.labels] = _labelset(
                    {**dict(s.labels), METRIC_NAME: rule.name, **rule.labels})
            out.append((key, s.value))
        if len({labels for labels, _ in out}) != len(out):
            raise PromQLError("vector contains metrics with the same labelset after applying "
                              "rule labels")
        limit = self.group.limit  # as Prometheus's recording rule: nothing is written
        if limit > 0 and len(out) > limit:
            raise PromQLError(f"exceeded limit of {limit} with {len(out)} series")
        return out

    def _alert(self, index: int, rule: AlertingRule, t_ms: int, result: GroupResult
               ) -> list[tuple[LabelSet, float]]:
        fresh: dict[LabelSet, tuple[float, dict[str, str]]] = {}
        keys = _memo(self._keys, index) if self._static_labels[index] else None
        expanded = _memo(self._annotations, index)
        for s in self._query(rule, t_ms):
            data: TemplateData | None = None
            key = keys.get(s.labels) if keys is not None else None
            if key is None:
                data = TemplateData(dict(s.labels), self.external_labels, s.value)
                labels = {n: v for n, v in s.labels if n != METRIC_NAME}
                for name, template in rule.labels.items():
                    labels[name] = template.expand(data)
                labels["alertname"] = rule.name
                key = _labelset(labels)
                if keys is not None:
                    keys[s.labels] = key
            if key in fresh:
                raise PromQLError("vector contains metrics with the same labelset after "
                                  "applying alert labels")
            # Annotations depend on the series' labels and value alone (the external
            # labels are fixed): the same value gives the same text.
            cached = expanded.get(s.labels)
            if cached is not None and _same_float(cached[0], s.value):
                annotations = dict(cached[1])
            else:
                if data is None:
                    data = TemplateData(dict(s.labels), self.external_labels, s.value)
                annotations = {name: t.expand(data) for name, t in rule.annotations.items()}
                expanded[s.labels] = (s.value, dict(annotations))
            fresh[key] = (s.value, annotations)
        active = self._active[index]
        for key, (value, annotations) in fresh.items():
            current = active.get(key)
            if current is not None and current.state != INACTIVE:
                current.value = value
                current.annotations = annotations
                continue
            active[key] = Alert(key, annotations, t_ms, value, expr=rule.query.text)
        out: list[tuple[LabelSet, float]] = []
        for key, alert in list(active.items()):
            if key not in fresh:
                keep_firing = False
                if alert.state == FIRING and rule.keep_firing_for_ms > 0:
                    if alert.keep_firing_since_ms is None:
                        alert.keep_firing_since_ms = t_ms
                    keep_firing = t_ms - alert.keep_firing_since_ms < rule.keep_firing_for_ms
                if alert.state == PENDING or (alert.resolved_at_ms is not None and
                                              t_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS):
                    del active[key]
                if alert.state != INACTIVE and not keep_firing:
                    alert.state = INACTIVE
                    alert.resolved_at_ms = t_ms
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since_ms = None
            if alert.state == PENDING and t_ms - alert.active_at_ms >= rule.for_ms:
                alert.state = FIRING
                alert.fired_at_ms = t_ms
            series = self._alert_series[index].get((key, alert.state))
            if series is None:
                if len(self._alert_series[index]) >= _MEMO_LIMIT:
                    self._alert_series[index].clear()
                labels = dict(alert.labels)
                series = self._alert_series[index][key, alert.state] = (
                    _labelset({**labels, METRIC_NAME: "ALERTS", "alertstate": alert.state}),
                    _labelset({**labels, METRIC_NAME: "ALERTS_FOR_STATE"}))
            out.append((series[0], 1.0))
            out.append((series[1], float(alert.active_at_ms // 1000)))
        limit = self.group.limit  # as Prometheus's alerting rule: every alert is dropped
        if limit > 0 and len(out) // 2 > limit:
            self._active[index] = {}
            raise PromQLError(f"exceeded limit of {limit} with {len(out) // 2} alerts")
        result.alerts.extend(active.values())
        return out


def _memo(memos: list[dict[LabelSet, _T]], index: int) -> dict[LabelSet, _T]:
    memo = memos[index]
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    return memo


def _same_float(a: float, b: float) -> bool:
    """Equal as a template prints them: NaN equals NaN, -0 differs from 0."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _name_and_labels(rule: RecordingRule | AlertingRule) -> tuple[str, str]:
    return rule.name, repr(sorted((n, repr(t)) for n, t in rule.labels.items()))


def _labelset(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted((n, v) for n, v in labels.items() if v != ""))
