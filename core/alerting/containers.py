"""Alerts on model containers, from the ``containers`` KPIs of the docker
collector: a crash loop, an OOM kill, memory near the container's limit."""

from __future__ import annotations

from typing import Any

from modelmon.alerting.common import alert, has
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import number_text

_C = ("model", "version", "container")
_WHO = "{{ $labels.container }} (model {{ $labels.model }} {{ $labels.version }})"


def alerts(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, c = config.prefix, config.containers
    out = []
    if has(catalog, "container_restarts_total", _C):
        out.append(alert(
            config, "ModelContainerRestarting",
            f"increase({p}container_restarts_total[{c.restarts_window}]) > {c.max_restarts}",
            for_="0s", severity="warning",
            summary="A model container keeps restarting.",
            description=(
                f"Container {_WHO} on {{{{ $labels.instance }}}} restarted "
                f"{{{{ $value | humanize }}}} times in {c.restarts_window}: it crashes and "
                "Docker's restart policy brings it back. Its logs say why."
            ),
        ))
    if has(catalog, "container_oom_kills_total", _C):
        kills = f"{p}container_oom_kills_total"
        out.append(alert(
            config, "ModelContainerOomKilled",
            # The second half: a container killed before its first scrape (a model
            # that runs out of memory while loading) starts its series above 0,
            # which increase() does not count.
            f"increase({kills}[{c.oom_window}]) > 0\nor\n"
            f"({kills} > 0 unless {kills} offset {c.oom_window})",
            for_="0s", severity="warning",
            summary="A process of a model container was killed for the container's memory limit.",
            description=(
                f"The kernel killed a process of container {_WHO} {{{{ $value | humanize }}}} "
                f"times in {c.oom_window} because the container reached its memory limit."
            ),
        ))
    if has(catalog, "container_memory_working_set_bytes", _C) and has(
            catalog, "container_memory_limit_bytes", _C):
        out.append(alert(
            config, "ModelContainerMemoryNearLimit",
            f"{p}container_memory_working_set_bytes / {p}container_memory_limit_bytes"
            f" > {number_text(c.memory_limit_ratio)}",
            for_=c.memory_limit_for, severity="warning",
            summary="A model container uses most of its memory limit.",
            description=(
                f"Container {_WHO} uses {{{{ $value | humanizePercentage }}}} of its memory "
                f"limit; above it the kernel kills the model server."
            ),
        ))
    return out
