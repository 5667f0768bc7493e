"""Model service instrumentation: ``ModelMonitor`` and ``track()``, the Flask
integration, gunicorn multiprocess mode, and ``modelmon serve`` (/metrics,
POST /ingest, /healthz).

Light on purpose: ``gunicorn_config`` must run before anything imports
prometheus_client, so ``create_app`` is resolved on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmon.exporters.service.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from modelmon.exporters.service.app import create_app

        return create_app
    raise AttributeError(f"module 'modelmon.exporters.service' has no attribute {name!r}")


__all__ = ["create_app"]
