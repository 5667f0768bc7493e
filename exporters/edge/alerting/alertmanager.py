"""Alertmanager's API v2 as a delivery destination (``POST /api/v2/alerts``).

The core delivery worker (``modelmon.spool.delivery``) reads the alert spool
and owns retries and backoff; this module says how to send a batch and what
each answer means:

* every Alertmanager of the list gets every batch (an HA pair deduplicates
  notifications itself); the batch is delivered once **one** of them accepted
  it, as Prometheus's notifier counts it. One that was down meanwhile gets the
  firing alerts again with the next resend;
* 2xx -> delivered; 5xx, 429, a connection error, 401/403/404 and other 4xx
  that a fix of the deployment cures -> retry, the alerts are kept;
* 400 and 422 (Alertmanager refuses the alerts themselves) -> dropped, counted
  by the spool as ``http_<status>``.

Each spool record is one evaluation's notifications (a JSON list of API v2
alerts, each with our ``status``, taken out before sending). A batch is
coalesced before it is sent: per alert (its labels) and episode (its
``startsAt``) only the latest notification goes, so a backlog after an outage
reaches Alertmanager as the state at the end of the batch, oldest episode
first (one that fired and resolved offline arrives resolved, with its true
``startsAt`` and ``endsAt``). When more records wait behind the batch (a long
outage), a firing notification whose validity (``endsAt``) has passed is left
out: the records behind it hold its next resend or its resolution, and sent
it would make Alertmanager resolve, then fire again, an alert that never
stopped.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelmon import __version__
from modelmon.spool.destination import Batch, SendResult

from ..http_post import KeepAlivePost
from ..remote_write import TLS, Auth, ssl_context
from .config import AlertmanagerTarget

log = logging.getLogger(__name__)

Outcome = Literal["success", "retry", "dropped"]
_REFUSED = (400, 422)  # the alerts themselves are invalid: sending them again cannot help


@dataclass(frozen=True)
class PostResult:
    outcome: Outcome
    status: int | None
    message: str = ""
    retry_after: float | None = None


class AlertmanagerClient:
    """POSTs JSON alert lists to one Alertmanager over a kept-alive connection
    (the standard library's ``http.client``: the agent stays small)."""

    def __init__(self, target: AlertmanagerTarget) -> None:
        parsed = urllib.parse.urlsplit(target.alerts_url)
        self.url = target.alerts_url
        self._auth: Auth = target.auth
        self._http = KeepAlivePost(target.alerts_url, target.timeout,
                                   ssl_context(target.tls or TLS())
                                   if parsed.scheme == "https" else None)

    def post(self, body: bytes) -> PostResult:
        """Never raises for HTTP or I/O errors: they are classified."""
        headers = {"Content-Type": "application/json",
                   "User-Agent": f"modelmon-edge/{__version__}"}
        try:
            basic = self._auth.apply(headers)
        except OSError as exc:  # a credentials file unreadable: keep the alerts
            return PostResult("retry", None, f"credentials: {exc}")
        if basic is not None:
            token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            status, message, retry_after = self._http.post(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return PostResult("retry", None, f"{type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return PostResult("success", status)
        if status in _REFUSED:
            return PostResult("dropped", status, message)
        return PostResult("retry", status, message, _seconds(retry_after))

    def close(self) -> None:
        self._http.close()


def expired_firing(alert: dict[str, Any], now: dt.datetime) -> bool:
    """A firing notification whose validity has passed."""
    ends = alert.get("endsAt")
    if alert.get("status") != "firing" or not isinstance(ends, str):
        return False
    try:
        return dt.datetime.fromisoformat(ends.replace("Z", "+00:00")) < now
    except ValueError:
        return False


def coalesce(notifications: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest notification per (labels, startsAt), in order of first appearance."""
    latest: dict[tuple[tuple[tuple[str, str], ...], str], dict[str, Any]] = {}
    for alert in notifications:
        key = (tuple(sorted(alert["labels"].items())), str(alert.get("startsAt", "")))
        latest[key] = alert  # a dict keeps the position of the first insertion
    return list(latest.values())


class AlertmanagerDestination:
    """Every Alertmanager of the list as one delivery destination."""

    name = "alertmanager"

    def __init__(self, targets: Sequence[AlertmanagerTarget],
                 more_after: Callable[[int], bool] | None = None) -> None:
        self.clients = [AlertmanagerClient(t) for t in targets]
        # Whether records wait behind spool seq n (the alert spool's), or None.
        self._more_after = more_after
        self.last_error = ""
        self.last_success: float | None = None
        # Called as (alerts URL, notifications, accepted) after each POST (the KPIs).
        self.on_post: Callable[[str, int, bool], None] | None = None

    def send(self, batch: Batch) -> SendResult:
        result = SendResult()
        alerts: list[dict[str, Any]] = []
        sendable: list[int] = []
        for seq, payload in batch.rows:
            try:
                decoded = json.loads(payload)
                if not isinstance(decoded, list):
                    raise ValueError("not a list of alerts")
            except ValueError:
                log.error("alert spool record %d is not a JSON list of alerts; dropped", seq)
                result.add_dropped("undecodable", seq)
                continue
            alerts.extend(decoded)
            sendable.append(seq)
        if not sendable:
            return result
        latest = coalesce(alerts)
        if self._more_after is not None and self._more_after(batch.rows[-1][0]):
            now = dt.datetime.now(dt.UTC)
            latest = [a for a in latest if not expired_firing(a, now)]
        if not latest:  # superseded by the records behind: nothing to tell yet
            result.delivered = sendable
            return result
        body = json.dumps([{k: v for k, v in a.items() if k != "status"}
                           for a in latest]).encode()
        answers = [client.post(body) for client in self.clients]
        if self.on_post is not None:
            for client, answer in zip(self.clients, answers, strict=True):
                self.on_post(client.url, len(latest), answer.outcome == "success")
        if any(a.outcome == "success" for a in answers):
            result.delivered = sendable
            self.last_success = time.time()
            failed = [(c.url, a) for c, a in zip(self.clients, answers, strict=True)
                      if a.outcome != "success"]
            for url, answer in failed:  # the others have it; resends reach this one later
                log.warning("Alertmanager %s did not take %d alerts (%s %s)", url, len(alerts),
                            answer.status or "", answer.message[:200])
            return result
        first = answers[0]
        self.last_error = f"{first.status or ''} {first.message[:200]}".strip()
        if any(a.outcome == "retry" for a in answers):
            after = [a.retry_after for a in answers if a.retry_after is not None]
            log.warning("no Alertmanager took the alerts (%s: %s); will retry",
                        self.clients[0].url, self.last_error)
            result.retry = sendable
            result.retry_after = max(after) if after else None
            result.result = "retry"
            return result
        log.error("Alertmanager refused %d alerts (HTTP %s: %s); dropped", len(alerts),
                  first.status, first.message[:200])
        result.dropped[f"http_{first.status}"] = sendable
        result.result = "dropped"
        return result

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
