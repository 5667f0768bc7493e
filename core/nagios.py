"""``modelmon check``: a Nagios / Icinga plugin that asks Prometheus about a model.

It follows the Monitoring Plugins guidelines: one status line
``MODELMON <KPI> <STATE> - <text> | <perfdata>``, exit status 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN, thresholds as Nagios ranges (``10``: alert outside
0..10; ``10:``: below 10; ``~:10``: above 10; ``5:10``: outside; ``@5:10``:
inside). What each KPI reads (the generated recording rules must be loaded):

``burn-rate``  error-budget burn rate over ``--window`` (default 1h):
               ``model:modelmon_inference_errors:ratio_rate<window>`` divided
               by the budget ``1 - availability_target`` (thresholds file);
``drift``      the largest ``modelmon:feature_drift:1h`` of the model (``--method``);
``accuracy``   the lowest ``modelmon:feedback_accuracy:1h`` of the model;
``edge-link``  seconds since the device last delivered
               (``modelmon_edge_last_send_success_timestamp_seconds``, looked
               up over the last day, so a device offline for hours still answers).

No data (a model without traffic, rules not loaded) and an unreachable
Prometheus are UNKNOWN, with the reason: a check never claims OK without data.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelmon.units import number_text, parse_duration

if TYPE_CHECKING:
    from modelmon.thresholds import ThresholdsConfig

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
KPIS = ("burn-rate", "drift", "accuracy", "edge-link")


def default_ranges(kpi: str, thresholds: ThresholdsConfig) -> tuple[str, str]:
    """(warning, critical) when none are given: critical where the generated
    alerts fire (the same thresholds file), warning on the way there."""
    if kpi == "burn-rate":
        factors = sorted(f for _, _, f in thresholds.slo.page_windows)
        return f"~:{number_text(factors[0])}", f"~:{number_text(factors[-1])}"
    if kpi == "drift":
        critical = thresholds.quality.drift_threshold
        return f"~:{critical * 0.4:g}", f"~:{number_text(critical)}"
    if kpi == "accuracy":
        critical = thresholds.quality.min_accuracy
        return f"{min(1.0, critical + 0.1):g}:", f"{number_text(critical)}:"
    offline = parse_duration(thresholds.edge.offline_after, "edge.offline_after")
    return f"~:{offline / 3:g}", f"~:{number_text(offline)}"


_RANGE = re.compile(r"^(@)?(?:(~|[-+]?[\d.]+(?:e[-+]?\d+)?):)?([-+]?[\d.]+(?:e[-+]?\d+)?)?$")


@dataclass(frozen=True)
class Range:
    """A Nagios threshold range (Monitoring Plugins guidelines, "Threshold and ranges")."""

    low: float
    high: float
    inside: bool  # '@': alert when inside
    text: str

    @classmethod
    def parse(cls, text: str, option: str) -> Range:
        match = _RANGE.match(text.strip())
        if not text.strip() or match is None or (match[2] is None and match[3] is None):
            raise ValueError(f"{option}: expected a Nagios range such as 10, 10:, ~:10, 5:10 or "
                             f"@5:10, got {text!r}")
        start, end = match[2], match[3]
        low = -math.inf if start == "~" else float(start) if start is not None else 0.0
        high = float(end) if end is not None else math.inf
        if low > high:
            raise ValueError(f"{option}: the start of {text!r} is above its end")
        return cls(low, high, match[1] is not None, text.strip())

    def alerts(self, value: float) -> bool:
        inside = self.low <= value <= self.high
        return inside if self.inside else not inside


@dataclass(frozen=True)
class Check:
    kpi: str
    prometheus: str
    model: str | None = None
    version: str | None = None
    device: str | None = None
    method: str = "psi"
    window: str = "1h"
    availability_target: float = 0.999
    timeout: float = 10.0

    def query(self) -> str:
        def selector(**labels: str | None) -> str:
            pairs = [f'{k}="{_escape(v)}"' for k, v in labels.items() if v is not None]
            return "{" + ",".join(pairs) + "}"

        if self.kpi == "burn-rate":
            budget = 1.0 - self.availability_target
            return (f"max(model:modelmon_inference_errors:ratio_rate{self.window}"
                    f"{selector(model=self.model)}) / {budget!r}")
        if self.kpi == "drift":
            return (f"max(modelmon:feature_drift:1h"
                    f"{selector(model=self.model, version=self.version, method=self.method)})")
        if self.kpi == "accuracy":
            return (f"min(modelmon:feedback_accuracy:1h"
                    f"{selector(model=self.model, version=self.version)})")
        return (f"time() - max(max_over_time(modelmon_edge_last_send_success_timestamp_seconds"
                f"{selector(device=self.device)}[1d]))")

    def subject(self) -> str:
        if self.kpi == "edge-link":
            return f"device {self.device}"
        return f"model {self.model}" + (f" version {self.version}" if self.version else "")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def fetch(check: Check) -> float | None:
    """The query's value, None when it has no data; OSError/ValueError when
    Prometheus cannot be asked."""
    url = (check.prometheus.rstrip("/") + "/api/v1/query?"
           + urllib.parse.urlencode({"query": check.query()}))
    with urllib.request.urlopen(url, timeout=check.timeout) as resp:
        answer = json.loads(resp.read())
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer.get('error', answer)!r}")
    result = answer["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


_UNITS = {"burn-rate": "", "drift": "", "accuracy": "", "edge-link": "s"}
_LABELS = {"burn-rate": "burn_rate", "drift": "drift", "accuracy": "accuracy",
           "edge-link": "seconds_since_delivery"}


def run(check: Check, warning: Range, critical: Range) -> tuple[int, str]:
    """(exit status, the status line)."""
    name = _LABELS[check.kpi]
    head = f"MODELMON {check.kpi.upper()}"
    try:
        value = fetch(check)
    except (OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", exc)
        return UNKNOWN, f"{head} UNKNOWN - cannot query Prometheus at {check.prometheus}: {reason}"
    if value is None:
        hint = ("has the device ever delivered?" if check.kpi == "edge-link"
                else "is there traffic, and are modelmon's recording rules loaded?")
        return UNKNOWN, f"{head} UNKNOWN - no data for {check.subject()} ({hint})"
    state = CRITICAL if critical.alerts(value) else WARNING if warning.alerts(value) else OK
    unit = _UNITS[check.kpi]
    text = f"{check.subject()} {name.replace('_', ' ')} {value:.4g}{unit}"
    perf = f"{name}={value:.6g}{unit};{warning.text};{critical.text}"
    if check.kpi == "accuracy":
        perf += ";0;1"
    return state, f"{head} {STATES[state]} - {text} | {perf}"
