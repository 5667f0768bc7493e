"""Service-health KPIs: the RED and saturation view of a model server, its
HTTP layer, the /ingest endpoint and plugin collectors."""

from __future__ import annotations

from modelmon.kpi import (
    BATCH_SIZE_BUCKETS,
    HTTP_DURATION_BUCKETS,
    INFERENCE_DURATION_BUCKETS,
    KPI,
    PAYLOAD_BYTES_BUCKETS,
)

_ML = ("model", "version")

KPIS: tuple[KPI, ...] = (
    # --- service health: the RED + saturation view of a model -------------
    KPI(
        "inference_requests_total", "counter", "requests", (*_ML, "outcome"),
        "Inference calls by outcome (success, error, rejected).",
        "Traffic and error ratio of a model version. A rising share of 'error' means the model "
        "or its runtime fails; 'rejected' means inputs were refused before prediction "
        "(validation, overload). The availability SLO is computed from this counter.",
        "service",
        on_device=True, dashboard="model-service", row="Traffic and errors",
    ),
    KPI(
        "inference_duration_seconds", "histogram", "seconds", _ML,
        "Wall-clock duration of one inference call (a whole batch).",
        "Latency users feel. Watch p95/p99 per version: a new version that is slower, or a "
        "latency climb with constant traffic, points at the model or its hardware.",
        "service", buckets=INFERENCE_DURATION_BUCKETS,
        on_device=True, dashboard="model-service", row="Latency and saturation",
    ),
    KPI(
        "inference_in_flight", "gauge", "requests", _ML,
        "Inference calls currently executing.",
        "Saturation: when it sits at the worker/thread count, requests queue and latency grows.",
        "service", multiprocess_mode="livesum",
        dashboard="model-service", row="Latency and saturation",
    ),
    KPI(
        "inference_batch_size", "histogram", "rows", _ML,
        "Rows (or items) per inference call.",
        "How clients batch. A shift to larger batches explains latency growth without a "
        "regression; a shift to 1 explains throughput loss.",
        "service", buckets=BATCH_SIZE_BUCKETS,
        dashboard="model-service", row="Latency and saturation",
    ),
    KPI(
        "inference_exceptions_total", "counter", "exceptions", (*_ML, "exception"),
        "Exceptions raised by inference calls, by exception type (cardinality capped).",
        "Which failure dominates: a new exception type after a deploy is usually a "
        "feature-schema or dependency mismatch.",
        "service",
        dashboard="model-service", row="Traffic and errors",
    ),
    KPI(
        "payload_bytes", "histogram", "bytes", (*_ML, "direction"),
        "Size of inference request and response payloads, where known.",
        "Input size drives latency and cost; a jump in request size often means a client "
        "changed what it sends.",
        "service", buckets=PAYLOAD_BYTES_BUCKETS,
        dashboard="model-service", row="Latency and saturation",
    ),
    KPI(
        "model_info", "gauge", "info", (*_ML, "framework", "framework_version", "task"),
        "Model identity; always 1. Join on model and version to label other series.",
        "Which model versions are deployed where, and with which framework.",
        "service", multiprocess_mode="max",
        on_device=True, dashboard="model-service", row="Model lifecycle",
    ),
    KPI(
        "model_load_duration_seconds", "gauge", "seconds", _ML,
        "Duration of the last model load.",
        "Cold-start cost of a version; slow loads lengthen rollouts and autoscaling.",
        "service", multiprocess_mode="max",
        dashboard="model-service", row="Model lifecycle",
    ),
    KPI(
        "model_last_load_timestamp_seconds", "gauge", "seconds", _ML,
        "Unix time of the last model load.",
        "When a version was (re)loaded: correlate with changes in error rate or drift.",
        "service", multiprocess_mode="max",
        dashboard="model-service", row="Model lifecycle",
    ),
    # --- HTTP layer of an instrumented Flask app ---------------------------
    KPI(
        "http_requests_total", "counter", "requests", (*_ML, "endpoint", "method", "status"),
        "HTTP requests served by an instrumented app, by endpoint, method and status code.",
        "Per-endpoint traffic and HTTP errors of the model server, including requests that "
        "never reached the model (404, auth, validation).",
        "http",
        dashboard="model-service", row="HTTP layer",
    ),
    KPI(
        "http_request_duration_seconds", "histogram", "seconds", (*_ML, "endpoint", "method"),
        "Duration of HTTP requests served by an instrumented app, by endpoint and method.",
        "End-to-end server latency; its gap to inference_duration_seconds is time spent in "
        "(de)serialization and pre/post-processing.",
        "http", buckets=HTTP_DURATION_BUCKETS,
        dashboard="model-service", row="HTTP layer",
    ),
    # --- modelmon serve /ingest -------------------------------------------
    KPI(
        "ingest_events_total", "counter", "events", ("event_type", "outcome"),
        "Events received on POST /ingest, by event type and outcome (accepted; invalid: refused with its request).",
        "Whether non-Python model servers reach modelmon. A request is applied all-or-nothing: "
        "when one event is invalid the whole request gets a 400 naming the field, and all its "
        "events count as 'invalid'.",
        "ingest",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    KPI(
        "label_overflow_total", "counter", "values", ("metric", "label"),
        "Label values sent to __other__ because a label reached its cardinality cap.",
        "Non-zero means a label (model name, exception type, class) has more distinct values "
        "than allowed; raise the cap or fix the client that sends unbounded values.",
        "ingest",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    KPI(
        "label_values_replaced_total", "counter", "values", ("metric", "label"),
        "Label values whose control, format or unpaired-surrogate characters were replaced "
        "with U+FFFD.",
        "Non-zero means code in the model server passes text no consumer accepts as a label "
        "value (a NUL, a bidi override, a lone surrogate); /ingest refuses such values instead.",
        "ingest",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    KPI(
        "series_budget_exceeded_total", "counter", "series", ("metric",),
        "New series folded into __other__ because the model server's series budget "
        "(max_series) was spent; also fleet drift features left without bin counters by "
        "max_series or a model version's max_bin_series.",
        "Non-zero means more (model, version, ...) combinations arrived than the budget holds; "
        "the excess is counted under __other__. Raise max_series or fix the client. For "
        "metric=*_cumulative_bin_values_total: raise max_bin_series or track fewer drift "
        "features (docs/quality.md).",
        "ingest",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    # --- plugins -----------------------------------------------------------
    KPI(
        "collector_success", "gauge", "bool", ("collector",),
        "1 when a plugin collector's last collection succeeded, 0 when it failed or did not load.",
        "A 0 means a device- or cloud-specific collector is broken; its metrics are missing "
        "but the rest of the scrape is intact. The log says why.",
        "plugins",
        on_device=True, dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    KPI(
        "collector_duration_seconds", "gauge", "seconds", ("collector",),
        "Time a plugin collector took during the last scrape.",
        "A slow collector delays every scrape; keep it well under the scrape timeout.",
        "plugins",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
    KPI(
        "build_info", "gauge", "info", ("version", "python_version", "prometheus_client_version"),
        "modelmon build information; always 1.",
        "Which modelmon release a target runs, for fleet upgrades and bug reports.",
        "plugins",
        dashboard="model-service", row="modelmon itself: /ingest and plugins",
    ),
)

