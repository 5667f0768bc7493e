"""Log-shipper KPIs: events delivered, dropped, dead-lettered; the spool.

The event counters are read from the spool's persistent counters at scrape
time, so they survive restarts and always satisfy
``accepted = delivered + dropped + dead_lettered + pending``.
"""

from __future__ import annotations

from modelmon.kpi import HTTP_DURATION_BUCKETS, KPI

_S = ("sink",)

KPIS: tuple[KPI, ...] = (
    KPI(
        "log_events_total", "counter", "events", (*_S, "outcome"),
        "Log events by outcome: accepted into the spool, delivered, dropped, dead_lettered, "
        "retried (item retries, not part of the accounting).",
        "Whether the AI pipeline's logs arrive. accepted = delivered + dropped + dead_lettered "
        "+ pending at all times; any 'dropped' means events were lost (see the reason in "
        "log_events_dropped_total), 'dead_lettered' means the destination refused them "
        "(mapping errors): inspect with 'modelmon logs dead-letter list'.",
        "logs", dashboard="log-pipeline", row="Delivery",
    ),
    KPI(
        "log_events_dropped_total", "counter", "events", (*_S, "reason"),
        "Log events dropped, by reason (max_bytes, max_age, full, block_timeout, too_large, "
        "corrupt, processor, ...).",
        "Why events were lost: max_bytes/max_age mean the destination was down longer than "
        "the spool can hold; corrupt means a damaged spool file was skipped.",
        "logs", dashboard="log-pipeline", row="Delivery",
    ),
    KPI(
        "log_spool_pending_events", "gauge", "events", _S,
        "Log events in the spool waiting for delivery.",
        "Backlog: growing while the destination is down, draining after. A steady climb "
        "means the destination accepts less than the model servers produce.",
        "logs", multiprocess_mode="livesum", dashboard="log-pipeline", row="Spool",
    ),
    KPI(
        "log_spool_bytes", "gauge", "bytes", _S,
        "Disk used by the log spool (journal and SQLite files).",
        "How close the spool is to its max_bytes bound; at the bound, the full policy drops.",
        "logs", multiprocess_mode="livesum", dashboard="log-pipeline", row="Spool",
    ),
    KPI(
        "log_spool_oldest_pending_age_seconds", "gauge", "seconds", _S,
        "Age of the oldest log event waiting in the spool.",
        "Delivery lag: how stale the logs in Elasticsearch are. Compare with max_age, past "
        "which events are dropped.",
        "logs", multiprocess_mode="max", dashboard="log-pipeline", row="Spool",
    ),
    KPI(
        "log_dead_letters_stored", "gauge", "events", _S,
        "Log events in the dead-letter store, waiting to be inspected or replayed.",
        "Events the destination refused; fix the mapping, then 'modelmon logs dead-letter "
        "replay'.",
        "logs", multiprocess_mode="livesum",
        dashboard="log-pipeline", row="Spool",
    ),
    KPI(
        "log_bulk_request_duration_seconds", "histogram", "seconds", _S,
        "Duration of one request to the log destination (an Elasticsearch _bulk, a Logstash "
        "batch).",
        "Destination latency seen by the shipper; slow bulks lower the shipping rate and grow "
        "the backlog.",
        "logs", buckets=HTTP_DURATION_BUCKETS, dashboard="log-pipeline", row="Delivery",
    ),
    KPI(
        "log_bulk_requests_total", "counter", "requests", (*_S, "result"),
        "Requests to the log destination by result (ok, partial, throttled, server_error, "
        "too_large, connection_error, error).",
        "Health of the destination as the shipper sees it: throttled means Elasticsearch "
        "pushes back (429), connection_error that it is unreachable.",
        "logs",
        dashboard="log-pipeline", row="Delivery",
    ),
    KPI(
        "log_processor_failures_total", "counter", "events", ("processor",),
        "Log processor calls that raised; the event went on without that processor.",
        "A redaction or enrichment plugin is broken: events may carry unredacted fields.",
        "logs",
        dashboard="log-pipeline", row="Delivery",
    ),
)
