"""Model service instrumentation: ``ModelMonitor`` and ``track()``, the Flask
integration, gunicorn multiprocess mode, and ``modelmon serve`` (/metrics,
POST /ingest, /healthz).

Light on purpose: ``gunicorn_config`` must run before anything imports
prometheus_client, so ``create_app`` is resolved on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

if TYPE_CHECKING:
    from modelmon.exporters.service.app import create_app

__getattr__ = lazy_exports(__name__, {"create_app": "modelmon.exporters.service.app"})


__all__ = ["create_app"]
