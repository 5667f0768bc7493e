"""Configuration bundles: built and signed in the cloud, pulled or imported by devices.

Down: ``modelmon edge bundle build DIR`` packs rule files, a few edge settings
and the desired model versions into a signed, versioned ``tar.gz``
(:mod:`.format`, :mod:`.signing`); any HTTP server publishes it, ``modelmon
edge bundle serve`` with strong ETags (:mod:`.server`). The agent pulls it
with ``If-None-Match`` or takes it from ``modelmon edge bundle import``,
checks it completely in memory, applies it without a restart and keeps it as
the last known good (:mod:`.manager`, :mod:`.store`); the device's own
settings win (:mod:`.overrides`).

Up: ``modelmon_edge_config_info{version,sha256}``, the desired model
versions, the pull outcomes and refusals (:mod:`.telemetry`), remote-written
with everything else; the generated EdgeConfigStale and EdgeModelVersionSkew
alerts read them in the cloud.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

_EXPORTS = {
    "Bundle": "modelmon.exporters.edge.bundles.format",
    "BundleRefused": "modelmon.exporters.edge.bundles.format",
    "build_bundle": "modelmon.exporters.edge.bundles.format",
    "read_bundle": "modelmon.exporters.edge.bundles.format",
    "bundle_app": "modelmon.exporters.edge.bundles.server",
}

if TYPE_CHECKING:
    from modelmon.exporters.edge.bundles.format import (
        Bundle,
        BundleRefused,
        build_bundle,
        read_bundle,
    )
    from modelmon.exporters.edge.bundles.server import bundle_app

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["Bundle", "BundleRefused", "build_bundle", "bundle_app", "read_bundle"]
