"""modelmon: Prometheus, Grafana, Alertmanager and Elasticsearch for AI models.

The public API is this module's names. Core (this package) never imports the
exporters at import time; the names that live in ``modelmon.exporters`` are
resolved lazily on first access, so ``import modelmon`` stays cheap and the
dependency arrow keeps pointing from exporters to core.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from modelmon.catalog import CATALOG
from modelmon.hookspecs import hookimpl
from modelmon.kpi import KPI
from modelmon.lazy import lazy_exports

try:
    __version__ = importlib.metadata.version("modelmon")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

_LAZY = {
    "ModelMonitor": "modelmon.exporters.service.monitor",
    "InferenceRejected": "modelmon.exporters.service.monitor",
    "instrument_app": "modelmon.exporters.service.flask",
    "Profile": "modelmon.exporters.quality.profile",
    "LogShipper": "modelmon.exporters.logs",
}

if TYPE_CHECKING:
    from modelmon.exporters.logs import LogShipper
    from modelmon.exporters.quality.profile import Profile
    from modelmon.exporters.service.flask import instrument_app
    from modelmon.exporters.service.monitor import InferenceRejected, ModelMonitor


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["CATALOG", "KPI", "InferenceRejected", "LogShipper", "ModelMonitor", "Profile",
           "hookimpl", "instrument_app"]
