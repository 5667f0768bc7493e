"""The "Model containers and GPUs" row of the model-service dashboard: what
the built-in ``docker`` collector reads of each container labelled
``modelmon.model`` (catalog group ``containers``) and the ``nvml`` collector
of each GPU (group ``gpu``)."""

from __future__ import annotations

from modelmon.dashboards.common import Row, rate, selector, timeseries

TITLE = "Model containers and GPUs"
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
        timeseries(
            "GPU utilization",
            "Share of time a kernel ran on each GPU. Near 100% the GPU bounds inference; near 0 "
            "with traffic the model is not on the GPU.",
            "percentunit",
            [(f"max by (instance, gpu) ({selector('gpu_utilization_ratio', p)})"
              f" * on (instance, gpu) group_left (name) {selector('gpu_info', p)}",
              "{{instance}} gpu {{gpu}} {{name}}")],
        ),
        timeseries(
            "GPU memory: used, total and per container",
            "GPU memory allocated against what the card has, and what each Docker container's "
            "processes hold (container_id as docker ps shows it).",
            "bytes",
            [
                (f"max by (instance, gpu) ({selector('gpu_memory_used_bytes', p)})",
                 "used {{instance}} gpu {{gpu}}"),
                (f"max by (instance, gpu) ({selector('gpu_memory_total_bytes', p)})",
                 "total {{instance}} gpu {{gpu}}"),
                (f"max by (instance, gpu, container_id) "
                 f"({selector('gpu_process_memory_bytes', p)})",
                 "{{instance}} gpu {{gpu}} container {{container_id}}"),
            ],
        ),
        timeseries(
            "GPU temperature and power",
            "Core temperature (a hot GPU lowers its clocks) and power draw.",
            "short",
            [
                (f"max by (instance, gpu) ({selector('gpu_temperature_celsius', p)})",
                 "°C {{instance}} gpu {{gpu}}"),
                (f"max by (instance, gpu) ({selector('gpu_power_watts', p)})",
                 "W {{instance}} gpu {{gpu}}"),
            ],
        ),
        timeseries(
            "GPU ECC errors",
            "Memory errors per 5 minutes; uncorrected ones corrupt results or crash the model "
            "server.",
            "short",
            [(f"sum by (instance, gpu, type) (increase({selector('gpu_ecc_errors_total', p)}[5m]))",
              "{{type}} {{instance}} gpu {{gpu}}")],
        ),
    ])
