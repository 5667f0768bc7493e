"""Container KPIs of model servers: the built-in ``docker`` collector
(``modelmon.plugins.docker``) reads them from the Docker Engine API for every
container labelled ``modelmon.model`` (and optionally ``modelmon.version``).

Each series carries ``model``, ``version`` (empty when the label is absent)
and ``container`` (the container's name), so container health sits beside the
model's own KPIs on the model-service dashboard.
"""

from __future__ import annotations

from modelmon.kpi import KPI

_C = ("model", "version", "container")
_ROW = "Model containers and GPUs"

KPIS: tuple[KPI, ...] = (
    KPI(
        "container_cpu_seconds_total", "counter", "seconds", _C,
        "CPU time the container's processes used (user + system).",
        "Its rate is the cores the model server burns; near the container's CPU quota, "
        "inference is throttled and latency grows.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_memory_working_set_bytes", "gauge", "bytes", _C,
        "Memory in use by the container minus inactive page cache (what the OOM killer judges).",
        "Compare with container_memory_limit_bytes: at the limit the kernel kills the model "
        "server. Steady growth across requests is a leak.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_memory_limit_bytes", "gauge", "bytes", _C,
        "The container's memory limit (absent when it has none).",
        "The ceiling of the working set; a model that loads a bigger version needs a higher one.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_restarts_total", "counter", "restarts", _C,
        "Times Docker restarted the container (its restart policy).",
        "A model server that restarts repeatedly loses in-flight requests and reloads its "
        "model each time: look at its logs and at OOM kills.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_oom_kills_total", "counter", "kills", _C,
        "Processes of the container killed by the kernel for its memory limit, since the "
        "collector started (Docker's oom events).",
        "The model needs more memory than its limit: raise the limit, shrink the batch or "
        "the model.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_state", "gauge", "bool", (*_C, "state"),
        "1 for the container's current state (created, running, paused, restarting, removing, "
        "exited, dead), 0 for the others.",
        "A model container not running serves nothing; restarting means it keeps crashing.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_health_status", "gauge", "bool", (*_C, "status"),
        "1 for the container's health-check status (starting, healthy, unhealthy), 0 for the "
        "others; absent without a health check.",
        "Unhealthy: the model server's own health check fails although the process runs.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_network_bytes_total", "counter", "bytes", (*_C, "direction"),
        "Bytes received and transmitted on the container's network interfaces (absent with "
        "the host's network or none).",
        "Request and response traffic of the model server, including model downloads.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "container_block_io_bytes_total", "counter", "bytes", (*_C, "direction"),
        "Bytes read from and written to block devices by the container.",
        "Reads at start-up are the model loading; steady writes are logs or spools on disk.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "containers_unreported", "gauge", "containers", (),
        "Labelled containers left out of the collection by plugins.docker.max_containers.",
        "Non-zero: raise max_containers or label fewer containers; the ones left out have no "
        "container KPIs.",
        "containers",
        dashboard="model-service", row=_ROW,
    ),
)
