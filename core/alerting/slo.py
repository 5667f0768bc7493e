"""Multi-window, multi-burn-rate SLO alerts (Google SRE workbook, chapter 5).

An SLO of 99.9% leaves an error budget of 0.1% of calls over 30 days. A burn
rate of 14.4 spends 2% of that budget in one hour; 6 spends 5% in six hours:
both page. 3 over a day and 1 over three days spend 10% and make a ticket.
Each alert also needs the short window (1/12 of the long one) to burn, so it
resets quickly once the problem is fixed.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.utils import floatToGoString

from modelmon.alerting.common import alert, has, record
from modelmon.config import ConfigError
from modelmon.kpi import KPI
from modelmon.thresholds import SLOThresholds, ThresholdsConfig
from modelmon.units import number_text, parse_duration

# The defaults, (long window, short window, burn-rate factor); the rules and
# dashboards read config.slo.page_windows / ticket_windows, which may shorten them.
PAGE_WINDOWS = SLOThresholds.page_windows
TICKET_WINDOWS = SLOThresholds.ticket_windows


def windows(config: ThresholdsConfig) -> tuple[str, ...]:
    """Every window a burn-rate check reads, shortest first: one recording rule each."""
    slo = config.slo
    distinct = {w for long, short, _ in (*slo.page_windows, *slo.ticket_windows)
                for w in (long, short)}
    return tuple(sorted(distinct, key=lambda w: parse_duration(w, "window")))


def _horizon(burn_windows: tuple[tuple[str, str, float], ...]) -> str:
    return " and ".join(long for long, _, _ in burn_windows)


def errors_ratio(prefix: str, window: str) -> str:
    return f"model:{prefix}inference_errors:ratio_rate{window}"


def slow_ratio(prefix: str, window: str) -> str:
    return f"model:{prefix}inference_slow:ratio_rate{window}"


def requests_rate(prefix: str, window: str) -> str:
    return f"model:{prefix}inference_requests:rate{window}"


def latency_bucket(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> str:
    """The ``le`` label value of the latency objective, which must be a bucket bound."""
    kpi = next(k for k in catalog if k.name == "inference_duration_seconds")
    objective = config.slo.latency_objective_seconds
    if objective not in (kpi.buckets or ()):
        bounds = ", ".join(f"{number_text(b)}" for b in kpi.buckets or ())
        raise ConfigError(
            f"slo.latency_objective_seconds: {number_text(objective)} is not a bucket bound of "
            f"inference_duration_seconds; pick one of {bounds}"
        )
    return str(floatToGoString(objective))


def recording_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p = config.prefix
    if not has(catalog, "inference_requests_total", ("model", "outcome")):
        return []
    requests = f"{p}inference_requests_total"
    rules = []
    for w in windows(config):
        rules.append(record(requests_rate(p, w), f"sum by (model) (rate({requests}[{w}]))"))
        rules.append(record(
            errors_ratio(p, w),
            f'sum by (model) (rate({requests}{{outcome="error"}}[{w}]))\n'
            f"/\nsum by (model) (rate({requests}[{w}]))",
        ))
    if has(catalog, "inference_duration_seconds", ("model",)):
        le = latency_bucket(config, catalog)
        duration = f"{p}inference_duration_seconds"
        for w in windows(config):
            rules.append(record(
                slow_ratio(p, w),
                f'1 - (\n  sum by (model) (rate({duration}_bucket{{le="{le}"}}[{w}]))\n'
                f"  /\n  sum by (model) (rate({duration}_count[{w}]))\n)",
            ))
    return rules


def _burn_expr(series: Any, windows: tuple[tuple[str, str, float], ...], budget: float) -> str:
    clauses = [
        f"(\n  {series(long)} > ({number_text(factor)} * {budget:.6g})\nand\n"
        f"  {series(short)} > ({number_text(factor)} * {budget:.6g})\n)"
        for long, short, factor in windows
    ]
    return "\nor\n".join(clauses)


def alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, slo = config.prefix, config.slo
    out: list[dict[str, Any]] = []
    if has(catalog, "inference_requests_total", ("model", "outcome")):
        budget = 1 - slo.availability_target
        target = f"{slo.availability_target * 100:g}%"
        for name, burn, severity, for_ in (
            ("ModelErrorBudgetBurningFast", slo.page_windows, "critical", slo.page_for),
            ("ModelErrorBudgetBurningSlow", slo.ticket_windows, "warning", slo.ticket_for),
        ):
            out.append(alert(
                config, name, _burn_expr(lambda w: errors_ratio(p, w), burn, budget),
                for_=for_, severity=severity, labels={"slo": "availability"},
                summary="A model is failing fast enough to exhaust its availability error budget.",
                description=(
                    "Model {{ $labels.model }} failed {{ $value | humanizePercentage }} of its "
                    f"inference calls (long window of the {_horizon(burn)} burn-rate checks); the "
                    f"availability objective is {target}."
                ),
            ))
    if has(catalog, "inference_duration_seconds", ("model",)):
        budget = 1 - slo.latency_target
        target = f"{slo.latency_target * 100:g}%"
        objective = f"{number_text(slo.latency_objective_seconds)}s"
        for name, burn, severity, for_ in (
            ("ModelLatencyBudgetBurningFast", slo.page_windows, "critical", slo.page_for),
            ("ModelLatencyBudgetBurningSlow", slo.ticket_windows, "warning", slo.ticket_for),
        ):
            out.append(alert(
                config, name, _burn_expr(lambda w: slow_ratio(p, w), burn, budget),
                for_=for_, severity=severity, labels={"slo": "latency"},
                summary="A model is slow often enough to exhaust its latency error budget.",
                description=(
                    "{{ $value | humanizePercentage }} of the inference calls of model "
                    f"{{{{ $labels.model }}}} took longer than {objective} (long window of the "
                    f"{_horizon(burn)} burn-rate checks); the objective is {target} within {objective}."
                ),
            ))
    return out
