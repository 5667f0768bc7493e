"""Which alerts to send after an evaluation, and what Alertmanager is told:
Prometheus 2.42's notifier, on the device.

After each evaluation of a group (``rules/alerting.go`` ``sendAlerts``,
``rules/manager.go`` ``SendAlerts``):

* a pending alert is never sent;
* a firing alert is sent when it was never sent, and again once
  ``resend_delay`` has passed since the last send; a resolved one when it
  resolved after its last send, then again every ``resend_delay`` while the
  evaluator keeps it (15 minutes);
* ``startsAt`` is when the alert started firing on the device (even offline);
  ``endsAt`` is when it resolved, or for a firing alert the send's validity,
  ``4 * max(resend_delay, group interval)`` after the evaluation, so that an
  agent that stops sending lets it expire;
* the device labels are added where the alert lacks them (Prometheus's
  external labels), and ``generatorURL`` is ``external_url`` +
  ``/graph?g0.expr=<expr>&g0.tab=1``.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..rules.evaluation import FIRING, PENDING, Alert, GroupResult, RuleGroupEvaluator


@dataclass(frozen=True)
class NotifierSettings:
    resend_delay_ms: int
    external_url: str
    external_labels: Mapping[str, str]


def needs_sending(alert: Alert, t_ms: int, resend_delay_ms: int, interval_ms: int = 0) -> bool:
    """Prometheus's ``Alert.needsSending``. Prometheus evaluates on an exact grid;
    the agent at its collections, a few ms off it: the time since the last send
    is counted in whole ``interval_ms`` (rounded), so a jitter of the collection
    never moves a resend one evaluation earlier or later than Prometheus's."""
    if alert.state == PENDING:
        return False
    last = alert.last_sent_at_ms
    if last is None:
        return True
    if alert.resolved_at_ms is not None and alert.resolved_at_ms > last:
        return True
    elapsed = t_ms - last
    if interval_ms > 0:
        elapsed = round(elapsed / interval_ms) * interval_ms
    return resend_delay_ms < elapsed


def rfc3339(t_ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 in UTC, e.g. 2026-12-01T15:36:45.589Z."""
    stamp = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generator_url(external_url: str, expr: str) -> str:
    """Prometheus's ``strutil.TableLinkForExpression`` under ``external_url``."""
    return f"{external_url}/graph?g0.expr={urllib.parse.quote_plus(expr)}&g0.tab=1"


def api_alert(alert: Alert, settings: NotifierSettings) -> dict[str, Any]:
    """The alert as Alertmanager's API v2 ``postableAlert``."""
    labels = dict(alert.labels)
    for name, value in settings.external_labels.items():
        if value and not labels.get(name):
            labels[name] = value
    fired = alert.fired_at_ms if alert.fired_at_ms is not None else alert.active_at_ms
    if alert.state == FIRING or alert.resolved_at_ms is None:
        ends = alert.valid_until_ms
    else:
        ends = alert.resolved_at_ms
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(fired),
        "generatorURL": generator_url(settings.external_url, alert.expr),
    }
    if ends is not None:
        body["endsAt"] = rfc3339(ends)
    return body


@dataclass
class Notifications:
    """What one round of evaluations asks for: the alerts to send (API v2), and
    the state changes of this instant (for the local actions), each with
    ``status`` ``firing`` or ``resolved``."""

    send: list[dict[str, Any]]  # each with ``status``, taken out before the POST
    changes: list[dict[str, Any]]


def notifications(evaluated: Iterable[tuple[RuleGroupEvaluator, int, GroupResult]],
                  settings: NotifierSettings) -> Notifications:
    """Pick what to send after the evaluations ``evaluated`` (group, interval,
    result) and mark it sent (``last_sent_at_ms``, ``valid_until_ms``)."""
    out = Notifications([], [])
    for _evaluator, interval_ms, result in evaluated:
        t_ms = result.t_ms
        delta = max(settings.resend_delay_ms, interval_ms)
        for alert in result.alerts:
            if not needs_sending(alert, t_ms, settings.resend_delay_ms, interval_ms):
                continue
            alert.last_sent_at_ms = t_ms
            alert.valid_until_ms = t_ms + 4 * delta
            body = {**api_alert(alert, settings),
                    "status": "firing" if alert.state == FIRING else "resolved"}
            out.send.append(body)
            if (alert.fired_at_ms if alert.state == FIRING else alert.resolved_at_ms) == t_ms:
                out.changes.append(dict(body))
    return out
