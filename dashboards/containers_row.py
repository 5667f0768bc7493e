"""The "Model containers" row of the model-service dashboard: what the
built-in ``docker`` collector reads of each container labelled
``modelmon.model`` (catalog group ``containers``)."""

from __future__ import annotations

from modelmon.dashboards.common import Row, rate, selector, timeseries

TITLE = "Model containers"
_MVC = "{{model}} {{version}} {{container}}"
_BY = "model, version, container"


def row(prefix: str) -> Row:
    p = prefix
    return Row(TITLE, [
        timeseries(
            "Container CPU",
            "Cores each model container uses (CPU seconds per second). Near the container's "
            "CPU quota, inference is throttled and latency grows.",
            "short",
            [(f"sum by ({_BY}) ({rate('container_cpu_seconds_total', p)})", _MVC)],
        ),
        timeseries(
            "Container memory: working set and limit",
            "Working set (usage minus inactive page cache, what the OOM killer judges) against "
            "the container's memory limit. At the limit the kernel kills the model server.",
            "bytes",
            [
                (f"max by ({_BY}) ({selector('container_memory_working_set_bytes', p)})",
                 "working set " + _MVC),
                (f"max by ({_BY}) ({selector('container_memory_limit_bytes', p)})",
                 "limit " + _MVC),
            ],
        ),
        timeseries(
            "Container restarts and OOM kills",
            "Restarts by Docker's restart policy and processes killed for the memory limit, "
            "per 5 minutes. Either one means lost requests and a model reloading.",
            "short",
            [
                (f"sum by ({_BY}) (increase({selector('container_restarts_total', p)}[5m]))",
                 "restarts " + _MVC),
                (f"sum by ({_BY}) (increase({selector('container_oom_kills_total', p)}[5m]))",
                 "OOM kills " + _MVC),
            ],
        ),
        timeseries(
            "Container state and health",
            "The state each model container is in (running, exited, restarting, ...) and its "
            "health-check status where it has one; a container in neither running nor healthy "
            "serves nothing.",
            "short",
            [
                (f"max by ({_BY}, state) ({selector('container_state', p)}) == 1",
                 "{{state}} " + _MVC),
                (f"max by ({_BY}, status) ({selector('container_health_status', p)}) == 1",
                 "{{status}} " + _MVC),
            ],
        ),
        timeseries(
            "Container network and block I/O",
            "Bytes per second on the container's network interfaces (none with the host's "
            "network) and on block devices (reads at start-up are the model loading).",
            "Bps",
            [
                (f"sum by ({_BY}, direction) ({rate('container_network_bytes_total', p)})",
                 "net {{direction}} " + _MVC),
                (f"sum by ({_BY}, direction) ({rate('container_block_io_bytes_total', p)})",
                 "disk {{direction}} " + _MVC),
            ],
        ),
        timeseries(
            "Containers left out by max_containers",
            "Labelled containers the docker collector did not report because of "
            "plugins.docker.max_containers; non-zero: raise it.",
            "short",
            [(f"max by (job, instance) ({selector('containers_unreported', p)})",
              "{{instance}}")],
        ),
    ])
