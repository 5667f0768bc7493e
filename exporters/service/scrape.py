"""Rendering /metrics: content negotiation, and prometheus_client multiprocess mode.

Under a multi-worker WSGI server (gunicorn) each worker writes its metrics to
memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``; a scrape, answered by any
worker, aggregates all of them. Plugin collectors are per process, so in that
mode they run in the worker that answers the scrape (see docs/multiprocess.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from modelmon.exposition import render

__all__ = ["MULTIPROC_ENV", "multiprocess_dir", "render", "scrape_registry_factory"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get("prometheus_multiproc_dir")


def scrape_registry_factory(
    registry: CollectorRegistry, extra_collectors: tuple[object, ...] = ()
) -> Callable[[], CollectorRegistry]:
    """A function giving the registry a scrape should render.

    In a single process that is ``registry`` itself. In multiprocess mode it
    is a fresh registry that aggregates the workers' files, plus the
    per-process ``extra_collectors`` (plugin collectors).
    """
    path = multiprocess_dir()
    if path is None:
        return lambda: registry

    def build() -> CollectorRegistry:
        fresh = CollectorRegistry()
        MultiProcessCollector(fresh, path=path)
        for collector in extra_collectors:
            fresh.register(collector)  # type: ignore[arg-type]
        return fresh

    return build
