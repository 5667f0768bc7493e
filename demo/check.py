"""``--check``: has the scenario's story been seen where a user would see it?

An expected alert counts once Alertmanager notified the webhook receiver of it
firing and then resolved; an expected event once its ECS document is in the
JSON-lines sink; an outage once the cloud Prometheus holds the device's
samples of the whole outage (the backfill closed the gap) and the edge alert
the device fired while offline, at the device's own timestamps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelmon.demo.processes import PrometheusProcess
from modelmon.demo.scenarios import ExpectedAlert, ExpectedEvent, Scenario
from modelmon.demo.webhook import WebhookReceiver


@dataclass
class Outage:
    """When the schedule cut and restored a device's link (Unix seconds)."""

    device: str
    cut_at: float
    restored_at: float | None = None


@dataclass
class EventLog:
    """Reads the JSON-lines sink files incrementally."""

    log_dir: Path
    _offsets: dict[Path, int] = field(default_factory=dict)
    docs: list[dict[str, Any]] = field(default_factory=list)

    def refresh(self) -> None:
        for path in sorted(self.log_dir.glob("*.jsonl")):
            offset = self._offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line being written waits for the next look
            for line in chunk[:end].splitlines():
                try:
                    self.docs.append(json.loads(line))
                except ValueError:
                    continue
            self._offsets[path] = offset + end


def _unix(stamp: str) -> float:
    try:  # Alertmanager writes nanoseconds; fromisoformat takes at most microseconds
        head, _, frac = stamp.rstrip("Z").partition(".")
        frac = frac.split("+")[0][:6]
        return datetime.fromisoformat(f"{head}.{frac or '0'}+00:00").timestamp()
    except ValueError:
        return float("nan")


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%H:%M:%S") if unix == unix else "?"


def _field(doc: dict[str, Any], dotted: str) -> Any:
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _event_matches(doc: dict[str, Any], event: ExpectedEvent, since: float) -> bool:
    if _field(doc, "event.action") != event.action:
        return False
    if any(str(_field(doc, k)) != v for k, v in event.fields.items()):
        return False
    stamp = _field(doc, "@timestamp")
    if isinstance(stamp, str):
        try:
            if datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() < since - 1:
                return False
        except ValueError:
            return False
    if event.at_least:
        name, minimum = event.at_least
        value = _field(doc, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            return False
    return True


@dataclass
class Checker:
    scenario: Scenario
    webhook: WebhookReceiver
    prometheus: PrometheusProcess
    log_dir: Path | None  # None: events go to ES/Logstash, not checked here
    started_at: float
    outages: list[Outage] = field(default_factory=list)
    interval: float = 2.0

    def __post_init__(self) -> None:
        self._events = EventLog(self.log_dir) if self.log_dir is not None else None
        self._seen: set[str] = set()

    def _alert_state(self, expected: ExpectedAlert) -> str:
        fired = resolved = False
        starts: list[float] = []
        for n in self.webhook.received():
            if expected.matches(n.labels):
                fired = fired or n.status == "firing"
                resolved = resolved or (fired and n.status == "resolved")
                starts.append(_unix(n.starts_at))
        if fired and expected.starts_in_outage_of:
            outage = next((o for o in self.outages
                           if o.device == expected.starts_in_outage_of), None)
            end = outage.restored_at if outage and outage.restored_at else float("inf")
            if outage is None or not any(outage.cut_at <= s <= end for s in starts):
                return (f"notified with startsAt {', '.join(map(_iso, starts))}, not within the "
                        f"outage of {expected.starts_in_outage_of}")
        return "fired and resolved" if resolved else ("fired, not resolved" if fired else "")

    def missing(self) -> list[str]:
        """What has not been seen yet; empty once the scenario passed."""
        out = []
        for expected in self.scenario.alerts:
            state = self._alert_state(expected)
            if state != "fired and resolved":
                out.append(f"alert {expected} in Alertmanager: "
                           f"{state or 'never notified'} (expected fired and resolved)")
        if self._events is not None:
            self._events.refresh()
            for event in self.scenario.events:
                key = str(event)
                if key not in self._seen and any(
                        _event_matches(doc, event, self.started_at) for doc in self._events.docs):
                    self._seen.add(key)
                if key not in self._seen:
                    out.append(f"{event} in {self.log_dir}: not found")
        for series in self.scenario.series:
            key = f"series {series.promql}"
            if key not in self._seen and self.prometheus.query(series.promql):
                self._seen.add(key)
            if key not in self._seen:
                out.append(f"{series}: nothing in Prometheus")
        if self.scenario.backfill_device:
            out.extend(self._backfill_missing(self.scenario.backfill_device))
        return out

    def _backfill_missing(self, device: str) -> list[str]:
        outage = next((o for o in self.outages if o.device == device), None)
        if outage is None or outage.restored_at is None:
            return [f"outage of {device}: the link was not cut and restored yet"]
        span = outage.restored_at - outage.cut_at
        at = outage.restored_at + 1
        selector = f'modelmon_inference_requests_total{{device="{device}",outcome="success"}}'
        series = self.prometheus.query(f"{selector}[{int(span) + 2}s]", at=at)
        stamps = sorted(float(ts) for s in series for ts, _ in s["values"]
                        if outage.cut_at <= float(ts) <= outage.restored_at)
        gaps = [b - a for a, b in zip([outage.cut_at, *stamps], [*stamps, outage.restored_at],
                                      strict=True)]
        out = []
        if not stamps or max(gaps) > 3 * self.interval:
            out.append(f"backfill of {device}: the cloud Prometheus has {len(stamps)} samples of "
                       f"the {span:.0f} s outage, largest gap {max(gaps):.1f} s (expected every "
                       f"{self.interval:g} s)")
        alert = self.scenario.offline_edge_alert
        if alert:
            fired = self.prometheus.query(
                f'ALERTS{{alertname="{alert}",device="{device}",alertstate="firing"}}'
                f"[{int(span) + 2}s]", at=at)
            during = [float(ts) for s in fired for ts, _ in s["values"]
                      if outage.cut_at <= float(ts) <= outage.restored_at]
            if not during:
                out.append(f"edge alert {alert} of {device}: no firing state from the outage "
                           f"in the cloud Prometheus (it fires on the device and is backfilled)")
        return out
