"""The edge agent: device and model KPIs, a durable spool, remote_write backfill.

See ``docs/edge.md``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["EdgeAgent", "EdgeConfig", "edge_config_from_mapping", "load_edge_config"]
