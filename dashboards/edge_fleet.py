"""Edge fleet: devices and links, backlog, last sync, drops, resources, model versions.

The time since last sync and the spool's use of its limits draw the edge
thresholds of the config (``edge.offline_after``, ``edge.backlog_limit_ratio``).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from modelmon.dashboards.common import (
    Row,
    dashboard,
    datasource_variable,
    fill_from_catalog,
    in_catalog,
    quantile,
    query_variable,
    rate,
    selector,
    timeseries,
)
from modelmon.thresholds import ThresholdsConfig
from modelmon.units import parse_duration

NAME = "edge-fleet"
UID = f"modelmon-{NAME}"
TITLE = "modelmon / Edge fleet"


def rows(config: ThresholdsConfig) -> list[Row]:
    p, e = config.prefix, config.edge
    links, backlog, spool, resources = (
        Row("Devices and links"), Row("Backlog and delivery"), Row("Spool and its limits"),
        Row("Device resources"),
    )
    rollout = _rollout(config)
    if in_catalog("edge_link_up"):
        links.panels.append(timeseries(
            "Link up",
            "1 while a device's last remote_write request reached the receiver, 0 while its "
            "link is down and samples accumulate in its spool.",
            "bool",
            [(f"max by (device) ({selector('edge_link_up', p)})", "{{device}}")],
        ))
    if in_catalog("edge_last_send_success_timestamp_seconds"):
        links.panels.append(timeseries(
            "Time since last sync",
            "Seconds since each device last delivered samples (looking back a day, since "
            "remote-written series go stale). The EdgeDeviceOffline alert fires above the "
            f"red line ({e.offline_after}).",
            "s",
            [(
                f"time() - max by (device) (max_over_time("
                f"{selector('edge_last_send_success_timestamp_seconds', p)}[1d]))",
                "{{device}}",
            )],
            thresholds=[(parse_duration(e.offline_after, "edge.offline_after"), "red")],
        ))
    links.panels.append(timeseries(
        "Model version per device",
        "Which model versions each device serves (from model_info): a rollout shows as lines "
        "that start and stop per device.",
        "short",
        [(
            f"max by (device, model, version) ({selector('model_info', p)})",
            "{{device}} {{model}} {{version}}",
        )],
    ))
    if in_catalog("edge_backlog_samples"):
        backlog.panels.append(timeseries(
            "Backlog samples",
            "Samples waiting in each device's spool: grows while the link is down, shrinks "
            "while the backlog drains.",
            "short",
            [(f"max by (device) ({selector('edge_backlog_samples', p)})", "{{device}}")],
        ))
    if in_catalog("edge_backlog_oldest_sample_age_seconds"):
        backlog.panels.append(timeseries(
            "Oldest pending sample age",
            "How far behind the receiver is for each device. At the spool's max_age the "
            "oldest samples are dropped.",
            "s",
            [(f"max by (device) ({selector('edge_backlog_oldest_sample_age_seconds', p)})",
              "{{device}}")],
        ))
    if in_catalog("edge_samples_collected_total", "edge_samples_sent_total"):
        backlog.panels.append(timeseries(
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
    if in_catalog("edge_samples_dropped_total"):
        backlog.panels.append(timeseries(
            "Samples dropped by reason",
            "Samples per second removed without delivery. max_age / max_bytes: the outage "
            "outlived the spool; too_old / out_of_order: the receiver refused old samples.",
            "cps",
            [(f"sum by (device, reason) ({rate('edge_samples_dropped_total', p)})",
              "{{device}} {{reason}}")],
        ))
    if in_catalog("edge_send_duration_seconds"):
        backlog.panels.append(timeseries(
            "remote_write latency p95",
            "95th percentile round trip of a remote_write request per device: the uplink "
            "plus the receiver.",
            "s",
            [(quantile(0.95, "edge_send_duration_seconds", p, "device"), "{{device}}")],
        ))
    limits = ("edge_backlog_bytes", "edge_spool_max_bytes",
              "edge_backlog_oldest_sample_age_seconds", "edge_spool_max_age_seconds")
    if in_catalog(*limits):
        bytes_, max_bytes, age, max_age = (selector(n, p) for n in limits)
        spool.panels.append(timeseries(
            "Spool use of its limits",
            "Backlog bytes over the spool's max_bytes, and the oldest pending sample's age over "
            "its max_age, per device. At 100% the oldest samples are dropped; the "
            f"EdgeBacklogNearLimit alert fires above the red line ({e.backlog_limit_ratio:g}) "
            f"for {e.backlog_limit_for}.",
            "percentunit",
            [
                (f"max by (device) ({bytes_} / {max_bytes})", "{{device}} bytes"),
                (f"max by (device) ({age} / {max_age})", "{{device}} age"),
            ],
            thresholds=[(e.backlog_limit_ratio, "red")],
        ))
    if in_catalog("system_cpu_utilization_ratio"):
        resources.panels.append(timeseries(
            "CPU utilization",
            "CPU busy share over all cores. A device pinned near 100% slows inference on it.",
            "percentunit",
            [(f"max by (device) ({selector('system_cpu_utilization_ratio', p)})", "{{device}}")],
        ))
    if in_catalog("system_memory_bytes"):
        resources.panels.append(timeseries(
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
    if in_catalog("system_filesystem_bytes"):
        resources.panels.append(timeseries(
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
    return [links, rollout, backlog, spool, resources]


def _rollout(config: ThresholdsConfig) -> Row:
    """Which bundle and which model versions run where: a rollout as counts of devices."""
    p, e = config.prefix, config.edge
    row = Row("Rollout")
    if in_catalog("edge_config_info"):
        row.panels.append(timeseries(
            "Devices per applied bundle",
            "How many devices run each configuration bundle version: during a rollout the new "
            "version climbs as the old one falls; devices left behind show in EdgeConfigStale.",
            "short",
            # Not selector(): its version is the bundle's, not the $version of the models.
            [(f'count by (version) (max by (device, version) ({p}edge_config_info'
              '{device=~"$device"}))', "{{version}}")],
            stacked=True,
        ))
    if in_catalog("edge_model_desired_info"):
        # device!="": model servers in the cloud export model_info without a device.
        running = (f'{p}model_info{{model=~"$model",version=~"$version",device=~"$device",'
                   'device!=""}')
        row.panels.append(timeseries(
            "Devices per model version, running and desired",
            "Devices running each model version (model_info with a device label) against the "
            "devices whose bundle asks for it; EdgeModelVersionSkew fires for a device that "
            f"runs another version than desired for {e.model_skew_for}.",
            "short",
            [
                (f"count by (model, version) (max by (device, model, version) ({running}))",
                 "{{model}} {{version}} running"),
                (f"count by (model, version) (max by (device, model, version) "
                 f"({selector('edge_model_desired_info', p)}))",
                 "{{model}} {{version}} desired"),
            ],
        ))
    if in_catalog("edge_bundle_last_success_timestamp_seconds"):
        row.panels.append(timeseries(
            "Time since bundle confirmed",
            "Seconds since each device last confirmed it runs the bundle its URL serves. "
            f"EdgeConfigStale fires above the red line ({e.config_stale_after}).",
            "s",
            [(f"time() - max by (device) "
              f"({selector('edge_bundle_last_success_timestamp_seconds', p)})", "{{device}}")],
            thresholds=[(parse_duration(e.config_stale_after, "edge.config_stale_after"), "red")],
        ))
    if in_catalog("edge_bundles_refused_total"):
        row.panels.append(timeseries(
            "Bundles refused by reason",
            "Bundles a device refused (signature, checksum, rules, config, thresholds, "
            "profiles, collectors, unreadable); it keeps running its last known good bundle.",
            "short",
            [(f"sum by (device, reason) (increase("
              f"{selector('edge_bundles_refused_total', p)}[$__rate_interval]))",
              "{{device}} {{reason}}")],
        ))
    return row


def build(config: ThresholdsConfig) -> Dashboard:
    prefix = config.prefix
    device_source = (
        f"{prefix}edge_link_up" if in_catalog("edge_link_up") else f"{prefix}model_info"
    )
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Edge devices: link state, spool backlog and backfill, last sync, dropped "
        "samples, device resources and the model version each device runs.",
        tags=["edge", "fleet"],
        rows=fill_from_catalog(NAME, rows(config), prefix),
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
