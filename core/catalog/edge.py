"""Edge KPIs, labelled by device: the agent's link, backlog, remote_write sends
and drops, and the device itself (the built-in ``system`` collector).

Every series an edge agent exports carries ``device`` (its ``device_id``),
both on its local /metrics and in what it remote-writes, so one Prometheus can
hold a whole fleet.
"""

from __future__ import annotations

from modelmon.kpi import KPI

# Round trips of one remote_write request: a LAN receiver answers in
# milliseconds, a cellular link to a cloud Prometheus in seconds.
SEND_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)

_D = ("device",)

_AGENT: tuple[KPI, ...] = (
    KPI(
        "edge_link_up", "gauge", "bool", _D,
        "1 when the last remote_write request reached the receiver, 0 when it failed.",
        "A 0 means the device is offline or the receiver is down: samples accumulate in the "
        "spool and will be backfilled. A device whose link stays down past the spool's "
        "max_age starts losing its oldest samples.",
        "edge",
        dashboard="edge-fleet", row="Devices and links",
    ),
    KPI(
        "edge_last_send_success_timestamp_seconds", "gauge", "seconds", _D,
        "Unix time of the last remote_write request the receiver accepted.",
        "time() minus this is how long the device has been out of reach; compare it with the "
        "spool's max_age to know when data starts being lost.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Devices and links",
    ),
    KPI(
        "edge_backlog_samples", "gauge", "samples", _D,
        "Samples waiting in the spool to be sent.",
        "Grows while the link is down and shrinks while a backlog drains; a backlog that "
        "never shrinks with the link up means the rate limit or the receiver is too slow.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_backlog_bytes", "gauge", "bytes", _D,
        "Bytes of samples waiting in the spool to be sent.",
        "Compare with the spool's max_bytes: at the limit, the full policy drops samples.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Spool and its limits",
    ),
    KPI(
        "edge_backlog_oldest_sample_age_seconds", "gauge", "seconds", _D,
        "Age of the oldest sample waiting in the spool; 0 when the spool is empty.",
        "How far behind the receiver is for this device. At the spool's max_age the oldest "
        "samples are dropped (reason max_age).",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_backfill_hold_seconds", "gauge", "seconds", _D,
        "Seconds the backlog still waits after a reconnect (remote_write.reconnect_jitter); "
        "0 when it is not held.",
        "Why a device that is back online does not backfill yet: a fleet reconnecting together "
        "spreads its backlogs over the jitter instead of sending them all at once.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_samples_collected_total", "counter", "samples", _D,
        "Samples collected and accepted into the spool.",
        "The sample stream of the device (model KPIs and collectors); sent + dropped + backlog "
        "add up to it over the spool's lifetime.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_samples_sent_total", "counter", "samples", _D,
        "Samples the receiver accepted through remote_write.",
        "Delivery throughput; its rate exceeds collection while a backlog drains.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_samples_dropped_total", "counter", "samples", (*_D, "reason"),
        "Samples removed without delivery, by reason (max_age, max_bytes, full, corrupt, "
        "too_old, out_of_order, duplicate, http_4xx status).",
        "Every lost sample is counted here. max_age/max_bytes: the outage outlived the spool; "
        "too_old/out_of_order: the receiver refused old samples (give it an "
        "out_of_order_time_window, or use order: fifo); http_4xx: configuration or auth error.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_send_requests_total", "counter", "requests", (*_D, "outcome"),
        "remote_write requests by outcome (success, retry, rejected, dropped, unauthorized).",
        "'retry' counts 5xx, 429 and connection failures that will be tried again; "
        "'rejected' counts refusals of old samples; 'dropped' counts other 4xx; "
        "'unauthorized' counts 401/403: the samples are held until the credentials change.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_send_duration_seconds", "histogram", "seconds", _D,
        "Round trip of one remote_write request, successful or not.",
        "Latency of the uplink plus the receiver; long sends on a slow link call for a "
        "larger max_samples_per_send.",
        "edge", buckets=SEND_DURATION_BUCKETS,
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_spool_disk_bytes", "gauge", "bytes", _D,
        "Disk space the spool uses, including its database overhead.",
        "Storage the agent takes on the device; bounded by the spool's max_bytes plus "
        "overhead.",
        "edge",
        dashboard="edge-fleet", row="Spool and its limits",
    ),
    KPI(
        "edge_spool_max_bytes", "gauge", "bytes", _D,
        "The spool's configured max_bytes: pending samples beyond it are dropped.",
        "The limit edge_backlog_bytes is judged against; devices may have different limits.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Spool and its limits",
    ),
    KPI(
        "edge_spool_max_age_seconds", "gauge", "seconds", _D,
        "The spool's configured max_age: samples older than this are dropped (absent: no limit).",
        "The limit edge_backlog_oldest_sample_age_seconds is judged against: an outage longer "
        "than this loses its oldest samples.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Spool and its limits",
    ),
)

# Alert delivery to Alertmanager (edge.alerting): Prometheus's
# prometheus_notifications_* for the device, remote-written with the rest.
_AM = (*_D, "alertmanager")
_ALERTING: tuple[KPI, ...] = (
    KPI(
        "edge_alert_notifications_sent_total", "counter", "alerts", _AM,
        "Alert notifications (firing or resolved) one Alertmanager accepted from the device.",
        "Moves with every resend while an alert fires; flat while the device has firing "
        "alerts means the notifications wait in the alert spool (see the failed counter).",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_alert_notifications_failed_total", "counter", "alerts", _AM,
        "Alert notifications one Alertmanager did not accept (unreachable, 5xx, 429, 401/403/"
        "404, or 400/422 refusals).",
        "Failures to one Alertmanager of an HA pair while the other accepts lose nothing; "
        "when every Alertmanager fails, the notifications stay in the alert spool and are "
        "retried.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_alert_notifications_dropped_total", "counter", "alerts", (*_D, "reason"),
        "Alert notifications dropped from the alert spool, by reason (http_400 and http_422: "
        "every Alertmanager refused them; max_age, max_bytes: the spool's bounds).",
        "Alerts Alertmanager will never get from the device: a refusal points at a bad rule "
        "label or annotation; max_age at an outage longer than the spool keeps alerts.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
    KPI(
        "edge_alert_notifications_pending", "gauge", "alerts", _D,
        "Alert notifications waiting in the device's alert spool for an Alertmanager.",
        "Grows while no Alertmanager is reachable; the backlog is sent, coalesced per alert, "
        "when one is.",
        "edge",
        dashboard="edge-fleet", row="Backlog and delivery",
    ),
)

_SYSTEM: tuple[KPI, ...] = (
    KPI(
        "system_cpu_utilization_ratio", "gauge", "ratio", _D,
        "CPU busy time over all cores since the previous collection, 0-1.",
        "A device pinned near 1 slows inference on it; correlate with inference latency.",
        "edge",
        dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        "system_load_average", "gauge", "tasks", (*_D, "period"),
        "System load average over 1m, 5m and 15m.",
        "Runnable tasks: above the core count the device is oversubscribed.",
        "edge",
        dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        # Was system_cpu_count: a gauge must not end in _count (OpenMetrics, promtool).
        "system_logical_cpus", "gauge", "cpus", _D,
        "Logical CPUs of the device.",
        "To read load averages and utilization against the device's size.",
        "edge",
        dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        "system_memory_bytes", "gauge", "bytes", (*_D, "state"),
        "Physical memory by state (total, available, used).",
        "Low available memory on a device risks the OOM killer stopping the model server.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        "system_filesystem_bytes", "gauge", "bytes", (*_D, "mountpoint", "state"),
        "Filesystem space by mount point and state (total, free, used).",
        "A full disk stops the spool, logs and model updates on the device.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        "system_network_bytes_total", "counter", "bytes", (*_D, "interface", "direction"),
        "Bytes received and transmitted per network interface.",
        "Uplink usage, including the agent's own backfill traffic after an outage.",
        "edge",
        dashboard="edge-fleet", row="Device resources",
    ),
    KPI(
        "system_temperature_celsius", "gauge", "celsius", (*_D, "sensor"),
        "Hardware temperature per sensor, where the OS exposes it.",
        "A hot device throttles its CPU or accelerator, and inference slows down.",
        "edge",
        dashboard="edge-fleet", row="Device resources",
    ),
)

KPIS: tuple[KPI, ...] = _AGENT + _ALERTING + _SYSTEM
