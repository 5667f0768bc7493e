"""Alert state that outlives an agent restart (the role of Prometheus's
``ALERTS_FOR_STATE`` and ``RuleGroup.RestoreForState``).

After each round of evaluations the alerts every group holds (pending,
firing, resolved and still notified) are written to ``alerts-state.json`` in
the state directory (write, fsync, rename). Before a group's first evaluation
after a start they are handed back to it, so that

* a **firing** alert keeps its ``activeAt`` and the time it started firing:
  Alertmanager gets its true ``startsAt`` after a restart (Prometheus restores
  only ``activeAt``, sends the restart time as ``startsAt`` and relies on
  Alertmanager merging the two while the old send is still valid), and an
  alert that stopped firing while the agent was down is resolved at the
  first evaluation instead of being forgotten;
* a **pending** alert's ``activeAt`` is restored as Prometheus does it: the
  time the agent was down does not count towards ``for``, and it waits at
  least ``for_grace_period`` more; rules whose ``for`` is shorter than the
  grace period start their pending alerts afresh;
* nothing is restored when the state is older than ``for_outage_tolerance``.

An alert is matched by its group (file and name), its rule (position and
name) and its labels; rules that changed place start afresh.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..rules.evaluation import PENDING, Alert, RuleGroupEvaluator
from ..rules.files import AlertingRule

log = logging.getLogger(__name__)

FORMAT = 1


def _group_key(evaluator: RuleGroupEvaluator) -> str:
    return f"{evaluator.group.file}\x00{evaluator.group.name}"


def _encode(alert: Alert) -> dict[str, Any]:
    data = dataclasses.asdict(alert)
    data["labels"] = [list(pair) for pair in alert.labels]
    return data


def _decode(data: dict[str, Any]) -> Alert:
    fields = {f.name for f in dataclasses.fields(Alert)}
    values = {k: v for k, v in data.items() if k in fields}
    values["labels"] = tuple((str(n), str(v)) for n, v in data["labels"])
    return Alert(**values)


class AlertStateStore:
    def __init__(self, path: Path, outage_tolerance_ms: int, grace_period_ms: int) -> None:
        self.path = path
        self._tolerance_ms = outage_tolerance_ms
        self._grace_ms = grace_period_ms
        self._saved = self._load()
        self._evaluated_at: dict[str, int] = {}
        self._wrote_empty = False
        self.restored = 0  # alerts handed back since the start

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read the alert state %s (%s); alerts start afresh", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            log.warning("alert state %s has an unknown format; alerts start afresh", self.path)
            return {}
        groups = data.get("groups")
        return groups if isinstance(groups, dict) else {}

    def restore(self, evaluator: RuleGroupEvaluator, t_ms: int) -> None:
        """Hand the saved alerts of ``evaluator``'s group back to it, before its first
        evaluation at ``t_ms`` (``EdgeRuleRunner.on_first_evaluation``)."""
        saved = self._saved.pop(_group_key(evaluator), None)
        if not saved:
            return
        down_at = int(saved.get("evaluated_at_ms", 0))
        if t_ms - down_at > self._tolerance_ms:
            log.info("alert state of group %r is %.0fs old, over for_outage_tolerance; not "
                     "restored", evaluator.group.name, (t_ms - down_at) / 1000)
            return
        rules = evaluator.group.rules
        for item in saved.get("alerts", []):
            try:
                index, name, alert = int(item["rule"]), str(item["name"]), _decode(item["alert"])
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("alert state %s: an entry cannot be read (%s); skipped", self.path, exc)
                continue
            if index >= len(rules) or rules[index].name != name:
                continue
            rule = rules[index]
            if not isinstance(rule, AlertingRule):
                continue
            if alert.state == PENDING:
                if rule.for_ms < self._grace_ms:
                    continue
                remaining = rule.for_ms - (down_at - alert.active_at_ms)
                if 0 < remaining < self._grace_ms:
                    alert.active_at_ms = t_ms + self._grace_ms - rule.for_ms
                elif remaining > 0:
                    alert.active_at_ms += t_ms - down_at
            evaluator.restore_alert(index, alert)
            self.restored += 1

    def save(self, evaluators: list[RuleGroupEvaluator], evaluated: list[RuleGroupEvaluator],
             t_ms: int) -> None:
        """Write what every group holds now; ``evaluated`` are the groups evaluated
        at ``t_ms``. Nothing is written while no group holds an alert."""
        for evaluator in evaluated:
            self._evaluated_at[_group_key(evaluator)] = t_ms
        groups: dict[str, Any] = {}
        for evaluator in evaluators:
            held = evaluator.alerts_by_rule()
            if held:
                key = _group_key(evaluator)
                groups[key] = {
                    "evaluated_at_ms": self._evaluated_at.get(key, t_ms),
                    "alerts": [{"rule": i, "name": name, "alert": _encode(a)}
                               for i, name, a in held],
                }
        # Groups not evaluated yet in this run keep what the last run saved.
        for key, saved in self._saved.items():
            groups.setdefault(key, saved)
        if not groups:
            if self._wrote_empty:
                return
            self._wrote_empty = True
        else:
            self._wrote_empty = False
        _write_atomic(self.path, json.dumps({"format": FORMAT, "groups": groups}))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
