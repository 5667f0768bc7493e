"""What the agent tells Alertmanager after each evaluation (Prometheus 2.42's
notifier rules), and the alert state it restores after a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelmon.exporters.edge.alerting.notifier import (
    NotifierSettings,
    notifications,
    rfc3339,
)
from modelmon.exporters.edge.alerting.state import AlertStateStore
from modelmon.exporters.edge.promql import MemoryStorage
from modelmon.exporters.edge.rules import RuleGroupEvaluator, parse_rule_groups

T0 = 1_700_000_000_000
SETTINGS = NotifierSettings(resend_delay_ms=60_000, external_url="http://press-7:9108",
                            external_labels={"device": "press-7", "site": "plant-3"})
RULES = """
groups:
  - name: line
    rules:
      - alert: Hot
        expr: temperature > 80
        for: 20s
        labels: {severity: critical, site: hall-2}
        annotations: {summary: "{{ $labels.sensor }} at {{ $value }}"}
"""


class Line:
    """One rule group over one temperature series, evaluated every 10 s."""

    def __init__(self, rules: str = RULES) -> None:
        self.storage = MemoryStorage()
        self.group = parse_rule_groups(rules, "line.yml")[0]
        self.evaluator = RuleGroupEvaluator(self.group, self.storage, SETTINGS.external_labels)

    def step(self, t_ms: int, temperature: float | None) -> list[dict[str, object]]:
        if temperature is not None:
            self.storage.append((("__name__", "temperature"), ("sensor", "s1")), t_ms, temperature)
        result = self.evaluator.evaluate(t_ms)
        return notifications([(self.evaluator, 10_000, result)], SETTINGS).send


def test_firing_is_sent_with_its_start_resent_every_resend_delay_and_resolved_with_its_end():
    line = Line()
    sent = {t: line.step(T0 + t * 1000, 90.0) for t in range(0, 100, 10)}
    # Pending at 0 and 10 s; firing at 20 s (for: 20s): never sent while pending.
    assert sent[0] == sent[10] == []
    assert sent[20] == [{
        "labels": {"alertname": "Hot", "sensor": "s1", "severity": "critical",
                   "site": "hall-2", "device": "press-7"},  # the rule's site wins
        "annotations": {"summary": "s1 at 90"},
        "startsAt": rfc3339(T0 + 20_000),
        # Valid for 4 * max(resend_delay, interval): an agent that stops lets it expire.
        "endsAt": rfc3339(T0 + 20_000 + 240_000),
        "generatorURL": "http://press-7:9108/graph?g0.expr=temperature+%3E+80&g0.tab=1",
        "status": "firing",  # ours, taken out before the POST
    }]
    first = sent[20][0]
    # Resent once more than resend_delay (60 s) has passed: at 90 s, not at 80 s.
    assert [t for t, s in sent.items() if s] == [20, 90]
    assert sent[90][0]["startsAt"] == first["startsAt"]
    assert sent[90][0]["endsAt"] == rfc3339(T0 + 90_000 + 240_000)
    resolved = line.step(T0 + 100_000, 70.0)
    assert len(resolved) == 1
    assert resolved[0]["startsAt"] == first["startsAt"]
    assert resolved[0]["endsAt"] == rfc3339(T0 + 100_000)
    # A resolved alert is sent again every resend_delay while it is kept (15 minutes).
    later = {t: line.step(T0 + t * 1000, 70.0) for t in range(110, 200, 10)}
    assert [t for t, s in later.items() if s] == [170]
    assert later[170][0]["endsAt"] == rfc3339(T0 + 100_000)


def test_a_pending_alert_that_goes_away_is_never_sent():
    line = Line()
    assert line.step(T0, 90.0) == [] and line.step(T0 + 10_000, 70.0) == []
    assert line.step(T0 + 20_000, 70.0) == []


def test_changes_report_firing_and_resolved_once_each():
    line = Line()
    changes = []
    for t, temp in ((0, 90.0), (10, 90.0), (20, 90.0), (30, 90.0), (40, 70.0), (50, 70.0)):
        line.storage.append((("__name__", "temperature"), ("sensor", "s1")), T0 + t * 1000, temp)
        result = line.evaluator.evaluate(T0 + t * 1000)
        changes += notifications([(line.evaluator, 10_000, result)], SETTINGS).changes
    assert [(c["status"], c["startsAt"], c["endsAt"]) for c in changes] == [
        ("firing", rfc3339(T0 + 20_000), rfc3339(T0 + 260_000)),
        ("resolved", rfc3339(T0 + 20_000), rfc3339(T0 + 40_000)),
    ]


def _saved_and_fresh(tmp_path: Path, steps: list[tuple[int, float]], rules: str = RULES,
                     tolerance_ms: int = 3_600_000, grace_ms: int = 600_000
                     ) -> tuple[Line, AlertStateStore]:
    """Run ``steps`` and save; return a fresh Line (the restarted agent) and its store."""
    path = tmp_path / "alerts-state.json"
    before = Line(rules)
    store = AlertStateStore(path, tolerance_ms, grace_ms)
    for t, temp in steps:
        before.step(T0 + t * 1000, temp)
        store.save([before.evaluator], [before.evaluator], T0 + t * 1000)
    return Line(rules), AlertStateStore(path, tolerance_ms, grace_ms)


def test_a_firing_alert_keeps_its_start_across_a_restart(tmp_path):
    after, store = _saved_and_fresh(tmp_path, [(0, 90.0), (10, 90.0), (20, 90.0), (30, 90.0)])
    store.restore(after.evaluator, T0 + 300_000)  # down 4.5 minutes
    sent = after.step(T0 + 300_000, 90.0)
    assert len(sent) == 1 and sent[0]["startsAt"] == rfc3339(T0 + 20_000)
    assert store.restored == 1


def test_an_alert_that_stopped_while_the_agent_was_down_is_resolved_at_the_first_evaluation(
        tmp_path):
    after, store = _saved_and_fresh(tmp_path, [(0, 90.0), (10, 90.0), (20, 90.0)])
    store.restore(after.evaluator, T0 + 120_000)
    sent = after.step(T0 + 120_000, 70.0)
    assert [(s["startsAt"], s["endsAt"]) for s in sent] == [
        (rfc3339(T0 + 20_000), rfc3339(T0 + 120_000))]


def test_nothing_is_restored_after_the_outage_tolerance(tmp_path):
    after, store = _saved_and_fresh(tmp_path, [(0, 90.0), (10, 90.0), (20, 90.0)],
                                    tolerance_ms=60_000)
    store.restore(after.evaluator, T0 + 90_000)  # 70 s after the last evaluation
    assert after.step(T0 + 90_000, 90.0) == []  # pending afresh
    assert store.restored == 0


LONG_FOR = RULES.replace("for: 20s", "for: 30m")


@pytest.mark.parametrize(("pending_for_s", "down_s", "fires_after_restart_s"), [
    # 20 of 30 minutes pending, down 5 minutes: the 10 left are not shorter than the
    # grace period (10m), so the downtime is added: it fires 10 minutes after the restart.
    (1200, 300, 600),
    # 25 of 30 minutes pending: 5 left, less than the grace period: it waits the 10.
    (1500, 300, 600),
    # 5 of 30 minutes pending: 25 left, the downtime added: 25 minutes after the restart.
    (300, 300, 1500),
])
def test_a_pending_alert_is_restored_as_prometheus_does(tmp_path, pending_for_s, down_s,
                                                        fires_after_restart_s):
    steps = [(t, 90.0) for t in range(0, pending_for_s + 1, 60)]
    after, store = _saved_and_fresh(tmp_path, steps, rules=LONG_FOR)
    restart = T0 + (pending_for_s + down_s) * 1000
    store.restore(after.evaluator, restart)
    fired = None
    for t in range(0, 2400, 30):
        if after.step(restart + t * 1000, 90.0):
            fired = t
            break
    assert fired == fires_after_restart_s


def test_an_unreadable_state_file_starts_afresh(tmp_path):
    (tmp_path / "alerts-state.json").write_text("{not json")
    store = AlertStateStore(tmp_path / "alerts-state.json", 3_600_000, 600_000)
    line = Line()
    store.restore(line.evaluator, T0)
    assert store.restored == 0


def test_the_state_file_is_owner_only_and_names_group_rule_and_labels(tmp_path):
    _saved_and_fresh(tmp_path, [(0, 90.0)])
    path = tmp_path / "alerts-state.json"
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    (entry,) = data["groups"].values()
    assert entry["alerts"][0]["name"] == "Hot" and entry["alerts"][0]["rule"] == 0


def test_a_changed_group_keeps_the_alerts_of_its_unchanged_rules_on_reload():
    """A bundle that changes a group (here the annotation and a new rule) keeps the
    firing alert's start and last send, as Prometheus's CopyState does."""
    from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

    runner = EdgeRuleRunner(parse_rule_groups(RULES, "line.yml"), 10.0, {"device": "press-7"})
    sensor = (("__name__", "temperature"), ("device", "press-7"), ("sensor", "s1"))
    for t in range(0, 40, 10):
        runner.storage.append(sensor, T0 + t * 1000, 90.0)
        runner.evaluate_due(T0 + t * 1000)
    changed = RULES.replace("{{ $labels.sensor }} at", "sensor {{ $labels.sensor }} at") + """
      - alert: Cold
        expr: temperature < 0
"""
    runner.replace_groups(parse_rule_groups(changed, "line.yml"), 10.0)
    runner.storage.append(sensor, T0 + 40_000, 90.0)
    runner.evaluate_due(T0 + 40_000)
    (_, _, result), = runner.evaluated
    (alert,) = result.alerts
    assert alert.fired_at_ms == T0 + 20_000 and alert.last_sent_at_ms is None  # never notified
    assert alert.annotations == {"summary": "sensor s1 at 90"}
    runner.replace_groups(parse_rule_groups(changed.replace("severity: critical",
                                                            "severity: page"), "line.yml"), 10.0)
    runner.storage.append(sensor, T0 + 50_000, 90.0)
    runner.evaluate_due(T0 + 50_000)
    (_, _, result), = runner.evaluated
    assert [a.active_at_ms for a in result.alerts] == [T0 + 50_000]  # other labels: afresh


def test_resends_keep_prometheus_cadence_when_collections_jitter():
    """Prometheus evaluates every 10 s exactly and resends after 60 s at 70 s; the
    agent's collections come a few ms early or late: still every 7 evaluations."""
    line = Line(RULES.replace("for: 20s", "for: 0s"))
    jitter = [0, 4, -3, 2, 5, -4, 1, 3, -2, 0, 4, -5, 2, 1, -1, 3, 0, -3, 2, 4, -2, 1]
    sends = [k for k, j in enumerate(jitter) if line.step(T0 + k * 10_000 + j, 90.0)]
    assert sends == [0, 7, 14, 21]
