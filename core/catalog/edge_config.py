"""What runs where on an edge fleet: the configuration bundle each device
applied, how its pulls go, and the model versions its bundle asks for.

The devices remote-write these like every other series, so the cloud
Prometheus answers "which devices run bundle X" and "which devices run
another model version than desired" (the EdgeConfigStale and
EdgeModelVersionSkew alerts, the edge fleet dashboard's rollout row). The
versions a device actually runs are ``model_info`` with the ``device`` label.
"""

from __future__ import annotations

from modelmon.kpi import KPI

_D = ("device",)

KPIS: tuple[KPI, ...] = (
    KPI(
        "edge_config_info", "gauge", "info", (*_D, "version", "sha256"),
        "The configuration bundle the device runs: its version and the sha256 of its manifest.",
        "Count devices by version to follow a rollout; a device that keeps an old version "
        "refused the new bundle or cannot reach it (EdgeConfigStale says which).",
        "edge",
        dashboard="edge-fleet", row="Rollout",
    ),
    KPI(
        "edge_bundle_last_success_timestamp_seconds", "gauge", "seconds", _D,
        "Unix time the device last confirmed it runs the bundle its URL serves (applied it, or "
        "304 Not Modified).",
        "time() minus this is how long the device may have run an outdated configuration: "
        "the bundle server is out of its reach, or it refuses what the server offers.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Rollout",
    ),
    KPI(
        "edge_bundle_pulls_total", "counter", "requests", (*_D, "outcome"),
        "Bundle pulls by outcome (applied, unchanged, refused, failed).",
        "'failed' means the bundle URL did not answer with a bundle (network, 404, 5xx); "
        "'refused' means it did, and the device kept its last known good bundle.",
        "edge",
        dashboard="edge-fleet", row="Rollout",
    ),
    KPI(
        "edge_bundles_refused_total", "counter", "bundles", (*_D, "reason"),
        "Bundles refused, pulled or imported, by reason (unreadable, signature, checksum, "
        "rules, config, thresholds, profiles, collectors).",
        "signature: not signed with the key the device trusts (or changed after signing); "
        "checksum: damaged; rules: a rule the device cannot evaluate; config: a bad setting "
        "or model pin; thresholds, profiles, collectors: a bad thresholds file, reference "
        "profile or collector setting (or a collector the device lacks). The device keeps "
        "running its last known good bundle.",
        "edge",
        dashboard="edge-fleet", row="Rollout",
    ),
    KPI(
        "edge_model_desired_info", "gauge", "info", (*_D, "model", "version"),
        "The model versions the device's applied bundle asks it to run.",
        "Compared with model_info{device} by EdgeModelVersionSkew: a device that runs another "
        "version than desired, or none, for too long.",
        "edge",
        on_device=True, dashboard="edge-fleet", row="Rollout",
    ),
)
