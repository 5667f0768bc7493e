"""The edge agent: device and model KPIs, a durable spool, remote_write backfill.

See ``docs/edge.md``.
"""

from __future__ import annotations

from .agent import EdgeAgent
from .config import EdgeConfig, edge_config_from_mapping, load_edge_config

__all__ = ["EdgeAgent", "EdgeConfig", "edge_config_from_mapping", "load_edge_config"]
