"""GPU KPIs: the built-in ``nvml`` collector (``modelmon.plugins.nvml``) reads
them through NVIDIA's NVML (``nvidia-ml-py``, the ``gpu`` extra).

``gpu`` is the device index NVML gives; ``gpu_info`` maps it to the card's
name and UUID. Per-process memory is summed per Docker container
(``container_id``, the short id ``docker ps`` shows; empty for processes
outside a container), so it reads beside the ``container_*`` KPIs.
"""

from __future__ import annotations

from modelmon.kpi import KPI

_G = ("gpu",)
_ROW = "Model containers and GPUs"

KPIS: tuple[KPI, ...] = (
    KPI(
        "gpu_info", "gauge", "info", (*_G, "name", "uuid"),
        "1 per GPU, with its product name and UUID.",
        "Which card a gpu index is, to compare the same model on different hardware.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_utilization_ratio", "gauge", "ratio", _G,
        "Share of the last sample period during which a kernel ran on the GPU, 0-1.",
        "Near 1 the GPU is the bottleneck of inference; near 0 with traffic, the model runs "
        "on the CPU or waits on input.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_memory_used_bytes", "gauge", "bytes", _G,
        "GPU memory allocated.",
        "Against gpu_memory_total_bytes: a model that does not fit fails to load or to run "
        "bigger batches (CUDA out of memory).",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_memory_total_bytes", "gauge", "bytes", _G,
        "GPU memory installed.",
        "The ceiling of gpu_memory_used_bytes.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_temperature_celsius", "gauge", "celsius", _G,
        "GPU core temperature.",
        "A hot GPU lowers its clocks and inference slows down.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_power_watts", "gauge", "watts", _G,
        "GPU power draw.",
        "Energy per inference when divided by the request rate; at the power limit the GPU "
        "throttles.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_ecc_errors_total", "counter", "errors", (*_G, "type"),
        "ECC memory errors since the driver loaded, corrected and uncorrected.",
        "Uncorrected errors corrupt results or crash the model server: drain the GPU.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
    KPI(
        "gpu_process_memory_bytes", "gauge", "bytes", (*_G, "container_id"),
        "GPU memory used by compute processes, summed per Docker container.",
        "Which model container holds the GPU's memory.",
        "gpu",
        dashboard="model-service", row=_ROW,
    ),
)
