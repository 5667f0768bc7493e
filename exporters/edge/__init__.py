"""The edge agent: device and model KPIs, a durable spool, remote_write backfill.

See ``docs/edge.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

# Resolved on first access: the package is imported whenever `modelmon`'s
# command line loads this product's commands, and those must stay light
# (numpy, the spool, Flask load only when a command or user needs them).
_EXPORTS = {
    "EdgeAgent": "modelmon.exporters.edge.agent",
    "EdgeConfig": "modelmon.exporters.edge.config",
    "edge_config_from_mapping": "modelmon.exporters.edge.config",
    "load_edge_config": "modelmon.exporters.edge.config",
}

if TYPE_CHECKING:
    from modelmon.exporters.edge.agent import EdgeAgent
    from modelmon.exporters.edge.config import (
        EdgeConfig,
        edge_config_from_mapping,
        load_edge_config,
    )


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["EdgeAgent", "EdgeConfig", "edge_config_from_mapping", "load_edge_config"]
