"""Edge fleet: devices and links, backlog, last sync, drops, resources, model versions."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from modelmon.catalog import CATALOG
from modelmon.dashboards.common import (
    catalog_panels,
    dashboard,
    datasource_variable,
    quantile,
    query_variable,
    rate,
    row,
    selector,
    timeseries,
)
from modelmon.kpi import DEFAULT_PREFIX

UID = "modelmon-edge-fleet"
TITLE = "modelmon / Edge fleet"
GROUPS = ("edge",)


def _have(*names: str) -> bool:
    present = {k.name for k in CATALOG}
    return all(n in present for n in names)


def panels(prefix: str) -> list[Any]:
    p = prefix
    out: list[Any] = [row("Devices and links")]
    if _have("edge_link_up"):
        out.append(timeseries(
            "Link up",
            "1 while a device's last remote_write request reached the receiver, 0 while its "
            "link is down and samples accumulate in its spool.",
            "bool",
            [(f"max by (device) ({selector('edge_link_up', p)})", "{{device}}")],
        ))
    if _have("edge_last_send_success_timestamp_seconds"):
        out.append(timeseries(
            "Time since last sync",
            "Seconds since each device last delivered samples (looking back a day, since "
            "remote-written series go stale). The EdgeDeviceOffline alert fires on it.",
            "s",
            [(
                f"time() - max by (device) (max_over_time("
                f"{selector('edge_last_send_success_timestamp_seconds', p)}[1d]))",
                "{{device}}",
            )],
        ))
    out.append(timeseries(
        "Model version per device",
        "Which model versions each device serves (from model_info): a rollout shows as lines "
        "that start and stop per device.",
        "short",
        [(
            f"max by (device, model, version) ({selector('model_info', p)})",
            "{{device}} {{model}} {{version}}",
        )],
    ))
    if _have("edge_backlog_samples"):
        out.append(row("Backlog and delivery"))
        out.append(timeseries(
            "Backlog samples",
            "Samples waiting in each device's spool: grows while the link is down, shrinks "
            "while the backlog drains.",
            "short",
            [(f"max by (device) ({selector('edge_backlog_samples', p)})", "{{device}}")],
        ))
    if _have("edge_backlog_oldest_sample_age_seconds"):
        out.append(timeseries(
            "Oldest pending sample age",
            "How far behind the receiver is for each device. At the spool's max_age the "
            "oldest samples are dropped.",
            "s",
            [(f"max by (device) ({selector('edge_backlog_oldest_sample_age_seconds', p)})",
              "{{device}}")],
        ))
    if _have("edge_samples_collected_total", "edge_samples_sent_total"):
        out.append(timeseries(
            "Samples collected vs sent",
            "Samples per second going into the spool and accepted by the receiver; sent "
            "exceeds collected while a backlog drains.",
            "cps",
            [
                (f"sum by (device) ({rate('edge_samples_collected_total', p)})",
                 "{{device}} collected"),
                (f"sum by (device) ({rate('edge_samples_sent_total', p)})", "{{device}} sent"),
            ],
        ))
    if _have("edge_samples_dropped_total"):
        out.append(timeseries(
            "Samples dropped by reason",
            "Samples per second removed without delivery. max_age / max_bytes: the outage "
            "outlived the spool; too_old / out_of_order: the receiver refused old samples.",
            "cps",
            [(f"sum by (device, reason) ({rate('edge_samples_dropped_total', p)})",
              "{{device}} {{reason}}")],
        ))
    if _have("edge_send_duration_seconds"):
        out.append(timeseries(
            "remote_write latency p95",
            "95th percentile round trip of a remote_write request per device: the uplink "
            "plus the receiver.",
            "s",
            [(quantile(0.95, "edge_send_duration_seconds", p, "device"), "{{device}}")],
        ))
    if _have("system_cpu_utilization_ratio"):
        out.append(row("Device resources"))
        out.append(timeseries(
            "CPU utilization",
            "CPU busy share over all cores. A device pinned near 100% slows inference on it.",
            "percentunit",
            [(f"max by (device) ({selector('system_cpu_utilization_ratio', p)})", "{{device}}")],
        ))
    if _have("system_memory_bytes"):
        out.append(timeseries(
            "Memory available",
            "Share of physical memory still available. Low values risk the OOM killer "
            "stopping the model server.",
            "percentunit",
            [(
                f"max by (device) ({selector('system_memory_bytes', p, state='available')})\n/\n"
                f"max by (device) ({selector('system_memory_bytes', p, state='total')})",
                "{{device}}",
            )],
        ))
    if _have("system_filesystem_bytes"):
        out.append(timeseries(
            "Filesystem used",
            "Share of each filesystem in use. A full disk stops the spool, logs and model "
            "updates.",
            "percentunit",
            [(
                f"max by (device, mountpoint) ({selector('system_filesystem_bytes', p, state='used')})"
                f"\n/\nmax by (device, mountpoint) "
                f"({selector('system_filesystem_bytes', p, state='total')})",
                "{{device}} {{mountpoint}}",
            )],
        ))
    return out + catalog_panels(GROUPS, p, out)


def build(prefix: str = DEFAULT_PREFIX) -> Dashboard:
    device_source = (
        f"{prefix}edge_link_up" if _have("edge_link_up") else f"{prefix}model_info"
    )
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Edge devices: link state, spool backlog and backfill, last sync, dropped "
        "samples, device resources and the model version each device runs.",
        tags=["edge", "fleet"],
        panels=panels(prefix),
        variables=[
            datasource_variable(),
            query_variable("device", "Device", f"label_values({device_source}, device)"),
            query_variable(
                "model", "Model", f'label_values({prefix}model_info{{device=~"$device"}}, model)'
            ),
            query_variable(
                "version", "Version",
                f'label_values({prefix}model_info{{device=~"$device",model=~"$model"}}, version)',
            ),
        ],
    )
