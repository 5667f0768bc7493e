"""Model service: RED and saturation per model and version, SLO burn, lifecycle.

The error and slow-call ratios carry the error budget of the SLOs in the
thresholds config (orange: the budget itself, red: the fast-burn page rate),
and the latency panel the latency objective.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from modelmon.alerting import slo
from modelmon.dashboards import containers_row
from modelmon.dashboards.common import (
    Row,
    dashboard,
    datasource_variable,
    fill_from_catalog,
    model_variables,
    quantile,
    rate,
    selector,
    timeseries,
)
from modelmon.thresholds import SLOThresholds, ThresholdsConfig

NAME = "model-service"
UID = f"modelmon-{NAME}"
TITLE = "modelmon / Model service"
_MV = "{{model}} {{version}}"


def budget_steps(
    target: float, objectives: SLOThresholds | None = None
) -> list[tuple[float, str]]:
    """Threshold steps of a ratio against the error budget ``1 - target``:
    orange at the budget (the slowest ticket burn), red at the fastest page burn."""
    objectives = objectives or SLOThresholds()
    budget = 1 - target
    return [
        (round(budget * objectives.ticket_windows[-1][2], 6), "orange"),
        (round(budget * objectives.page_windows[0][2], 6), "red"),
    ]


def _panel_windows(objectives: SLOThresholds) -> tuple[str, ...]:
    """The fast page's short and long windows, then the other checks' long windows."""
    page, ticket = objectives.page_windows, objectives.ticket_windows
    out = [page[0][1], page[0][0], *(long for long, _, _ in page[1:]), ticket[0][0]]
    return tuple(dict.fromkeys(out))


def rows(config: ThresholdsConfig) -> list[Row]:
    p, objectives = config.prefix, config.slo
    availability = budget_steps(objectives.availability_target, objectives)
    latency = budget_steps(objectives.latency_target, objectives)
    page, windows = objectives.page_windows[0], _panel_windows(objectives)
    requests = "inference_requests_total"
    return [
        Row("Traffic and errors", [
            timeseries(
                "Inference calls by outcome",
                "Inference calls per second by model, version and outcome. 'error' is a failed "
                "call, 'rejected' an input refused before prediction.",
                "reqps",
                [(f"sum by (model, version, outcome) ({rate(requests, p)})", _MV + " {{outcome}}")],
                stacked=True,
            ),
            timeseries(
                "Error ratio",
                "Share of inference calls that ended in an error, per model and version. The "
                "availability SLO counts these against the error budget: orange is the budget "
                f"({1 - objectives.availability_target:.4g} for a "
                f"{objectives.availability_target * 100:g}% objective), red the rate that "
                "pages within the hour.",
                "percentunit",
                [(
                    f"sum by (model, version) ({rate(requests, p, outcome='error')})\n/\n"
                    f"sum by (model, version) ({rate(requests, p)})",
                    _MV,
                )],
                thresholds=availability,
            ),
            timeseries(
                "Exceptions by type",
                "Exceptions raised by inference calls per second, by exception type. A new type "
                "after a deploy is usually a schema or dependency mismatch.",
                "ops",
                [(
                    f"sum by (model, version, exception) ({rate('inference_exceptions_total', p)})",
                    _MV + " {{exception}}",
                )],
            ),
            timeseries(
                "Rejected ratio",
                "Share of inference calls whose input was refused before prediction (validation, "
                "overload). Not an error of the model, but of what it is sent.",
                "percentunit",
                [(
                    f"sum by (model, version) ({rate(requests, p, outcome='rejected')})\n/\n"
                    f"sum by (model, version) ({rate(requests, p)})",
                    _MV,
                )],
            ),
        ]),
        Row("Latency and saturation", [
            timeseries(
                "Inference latency p50 / p95 / p99",
                "Wall-clock duration of one inference call (a whole batch), as quantiles estimated "
                "from the histogram buckets. The red line is the latency objective "
                f"({objectives.latency_objective_seconds:g} s): the latency SLO wants "
                f"{objectives.latency_target * 100:g}% of calls below it.",
                "s",
                [
                    (quantile(q, "inference_duration_seconds", p), f"p{int(q * 100)} {_MV}")
                    for q in (0.5, 0.95, 0.99)
                ],
                thresholds=[(objectives.latency_objective_seconds, "red")],
            ),
            timeseries(
                "Calls in flight",
                "Inference calls executing now. When it sits at the worker or thread count, calls "
                "queue and latency grows.",
                "short",
                [(f"sum by (model, version) ({selector('inference_in_flight', p)})", _MV)],
            ),
            timeseries(
                "Batch size p50 / p95",
                "Rows per inference call. Larger batches explain latency growth without a "
                "regression; a shift to 1 explains throughput loss.",
                "short",
                [
                    (quantile(q, "inference_batch_size", p), f"p{int(q * 100)} {_MV}")
                    for q in (0.5, 0.95)
                ],
            ),
            timeseries(
                "Payload size p95",
                "95th percentile of request and response payload sizes, where the server reports "
                "them.",
                "bytes",
                [(quantile(0.95, "payload_bytes", p, "model, version, direction"),
                  _MV + " {{direction}}")],
            ),
        ]),
        Row("Error budget (needs the modelmon recording rules)", [
            timeseries(
                "Error ratio by burn-rate window",
                "Error ratio of each model over the windows of the multi-window burn-rate alerts. "
                f"The fast-burn page fires when both {page[0]} and {page[1]} exceed "
                f"{page[2]:g}x the budget (red); orange is the budget itself.",
                "percentunit",
                [
                    (f'{slo.errors_ratio(p, w)}{{model=~"$model"}}', "{{model}} " + w)
                    for w in windows
                ],
                thresholds=availability,
            ),
            timeseries(
                "Slow-call ratio by burn-rate window",
                "Share of inference calls slower than the latency objective, over the windows of "
                f"the latency burn-rate alerts: orange is the latency budget, red {page[2]:g}x "
                "it (the fast-burn page).",
                "percentunit",
                [
                    (f'{slo.slow_ratio(p, w)}{{model=~"$model"}}', "{{model}} " + w)
                    for w in windows
                ],
                thresholds=latency,
            ),
        ]),
        Row("HTTP layer", [
            timeseries(
                "HTTP requests by status",
                "HTTP requests per second served by the instrumented app, by endpoint and status, "
                "including requests that never reached the model (404, auth, validation).",
                "reqps",
                [(
                    f"sum by (endpoint, method, status) ({rate('http_requests_total', p)})",
                    "{{method}} {{endpoint}} {{status}}",
                )],
                stacked=True,
            ),
            timeseries(
                "HTTP latency p95 by endpoint",
                "95th percentile of HTTP request duration by endpoint. Its gap to the inference "
                "latency is (de)serialization and pre/post-processing.",
                "s",
                [(quantile(0.95, "http_request_duration_seconds", p, "endpoint, method"),
                  "{{method}} {{endpoint}}")],
            ),
        ]),
        Row("Model lifecycle", [
            timeseries(
                "Deployed model versions",
                "Model versions that report model_info, with their framework. One line per "
                "version: a rollout shows as lines starting and ending.",
                "short",
                [(
                    f"max by (model, version, framework, framework_version) "
                    f"({selector('model_info', p)})",
                    "{{model}} {{version}} ({{framework}} {{framework_version}})",
                )],
            ),
            timeseries(
                "Model load duration",
                "Duration of the last load of each version: the cold-start cost of rollouts and "
                "autoscaling.",
                "s",
                [(f"max by (model, version) ({selector('model_load_duration_seconds', p)})", _MV)],
            ),
            timeseries(
                "Time since model load",
                "Seconds since each version was last (re)loaded: correlate steps in error rate or "
                "drift with reloads.",
                "s",
                [(
                    f"time() - max by (model, version) "
                    f"({selector('model_last_load_timestamp_seconds', p)})",
                    _MV,
                )],
            ),
        ]),
        containers_row.row(p),
        Row("modelmon itself: /ingest and plugins", [
            timeseries(
                "/ingest events by type and outcome",
                "Events received on POST /ingest per second. 'invalid' requests were refused with "
                "a 400 naming the field.",
                "ops",
                [(
                    f"sum by (event_type, outcome) ({rate('ingest_events_total', p)})",
                    "{{event_type}} {{outcome}}",
                )],
            ),
            timeseries(
                "Label values folded into __other__",
                "Label values per second sent to __other__ because a label reached its cardinality "
                "cap. Non-zero: raise the cap or fix the client sending unbounded values.",
                "ops",
                [(
                    f"sum by (metric, label) ({rate('label_overflow_total', p)})",
                    "{{metric}} {{label}}",
                )],
            ),
            timeseries(
                "Plugin collector success",
                "1 when a plugin collector's last collection succeeded, 0 when it failed or did "
                "not load (the target's log says why).",
                "bool",
                [(f"min by (collector) ({selector('collector_success', p)})", "{{collector}}")],
            ),
            timeseries(
                "Plugin collector duration",
                "Time each plugin collector took during the last scrape; keep it well under the "
                "scrape timeout.",
                "s",
                [(f"max by (collector) ({selector('collector_duration_seconds', p)})",
                  "{{collector}}")],
            ),
            timeseries(
                "modelmon versions",
                "Targets per modelmon release (build_info), for fleet upgrades and bug reports.",
                "short",
                [(f"count by (version) ({selector('build_info', p)})", "modelmon {{version}}")],
            ),
        ]),
    ]


def build(config: ThresholdsConfig) -> Dashboard:
    prefix = config.prefix
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Traffic, errors, latency and saturation of model servers, per model and "
        "version, with the SLO burn rates the modelmon alerts use.",
        tags=["model", "service", "slo"],
        rows=fill_from_catalog(NAME, rows(config), prefix),
        variables=[datasource_variable(), *model_variables(prefix)],
    )
