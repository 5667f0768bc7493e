"""What the report reads from Prometheus (and, optionally, Alertmanager) over HTTP.

``query_range`` for the panels, ``/api/v1/status/config`` for the scrape
interval that ``$__rate_interval`` is computed from, the ``ALERTS`` series for
the alerts of the period, and Alertmanager's API v2 for the alerts active when
the report is written (edge devices send theirs there directly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import requests
import yaml

from modelmon.units import parse_duration

DEFAULT_SCRAPE_INTERVAL = 60.0  # Prometheus's own default, when the config does not say


class ReportError(Exception):
    """Prometheus or Alertmanager cannot be read; the message names the option to fix."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]  # (unix seconds, value); None: NaN or no value


@dataclass(frozen=True)
class AlertPeriod:
    """One uninterrupted stretch of an ``ALERTS`` series within the report's range."""

    name: str
    state: str  # pending or firing
    severity: str
    labels: dict[str, str]
    start: float
    end: float
    ongoing: bool  # still present at the end of the range


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            r = self._session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ReportError(
                f"cannot reach Prometheus at {self.url} (--prometheus): {exc}"
            ) from None
        try:
            body = r.json()
        except ValueError:
            raise ReportError(
                f"{self.url}{path} answered HTTP {r.status_code} without JSON: is --prometheus "
                f"the URL of a Prometheus server? ({r.text[:200]!r})"
            ) from None
        if body.get("status") != "success":
            raise QueryError(str(body.get("error") or f"HTTP {r.status_code}"))
        return body["data"]

    def scrape_interval(self) -> float:
        """The global scrape interval of the server's config."""
        try:
            data = self._get("/api/v1/status/config")
            text = data.get("yaml", "") if isinstance(data, dict) else ""
            config = yaml.safe_load(text) or {}
            value = (config.get("global") or {}).get("scrape_interval")
            return parse_duration(value, "scrape_interval") if value else DEFAULT_SCRAPE_INTERVAL
        except (QueryError, ValueError, yaml.YAMLError):
            return DEFAULT_SCRAPE_INTERVAL

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get("/api/v1/query_range",
                         {"query": expr, "start": start, "end": end, "step": step})
        return [
            Series(dict(item["metric"]), [(float(t), _number(v)) for t, v in item["values"]])
            for item in data.get("result", [])
        ]

    def alerts(self, selector: str, start: float, end: float, step: float) -> list[AlertPeriod]:
        """Pending and firing stretches of ``ALERTS{selector}``, oldest first."""
        periods = []
        for series in self.query_range(f"ALERTS{{{selector}}}", start, end, step):
            labels = {k: v for k, v in series.labels.items()
                      if k not in ("__name__", "alertname", "alertstate", "severity")}
            for first, last in _stretches([t for t, _ in series.points], step):
                periods.append(AlertPeriod(
                    name=series.labels.get("alertname", "?"),
                    state=series.labels.get("alertstate", "firing"),
                    severity=series.labels.get("severity", ""),
                    labels=labels, start=first, end=last,
                    ongoing=last >= end - step,
                ))
        return sorted(periods, key=lambda p: (p.start, p.name))


class QueryError(Exception):
    """Prometheus refused one query; the report shows it on the panel and goes on."""


def _number(value: str) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _stretches(times: list[float], step: float) -> list[tuple[float, float]]:
    """Runs of consecutive evaluation times (no gap longer than a step and a half)."""
    runs: list[tuple[float, float]] = []
    for t in times:
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


@dataclass(frozen=True)
class ActiveAlert:
    name: str
    state: str  # active, suppressed, unprocessed
    severity: str
    labels: dict[str, str]
    starts_at: str  # RFC 3339, as the sender set it (an edge device's original time)
    summary: str


def alertmanager_alerts(url: str, timeout: float = 10.0) -> list[ActiveAlert]:
    """The alerts Alertmanager holds now (API v2); resolved ones it no longer lists."""
    base = url.rstrip("/")
    try:
        r = requests.get(f"{base}/api/v2/alerts", timeout=timeout)
        r.raise_for_status()
        items = r.json()
    except (requests.RequestException, ValueError) as exc:
        raise ReportError(f"cannot read alerts from Alertmanager at {base} (--alertmanager): {exc}"
                          ) from None
    alerts = []
    for item in items:
        labels = dict(item.get("labels", {}))
        alerts.append(ActiveAlert(
            name=labels.pop("alertname", "?"),
            state=str((item.get("status") or {}).get("state", "")),
            severity=labels.pop("severity", ""),
            labels=labels,
            starts_at=str(item.get("startsAt", "")),
            summary=str((item.get("annotations") or {}).get("summary", "")),
        ))
    return sorted(alerts, key=lambda a: (a.starts_at, a.name))
