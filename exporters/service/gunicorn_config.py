"""gunicorn config for a multi-worker model server instrumented with modelmon.

Use it as ``gunicorn -c python:modelmon.exporters.service.gunicorn_config -w 4 app:app``
or import its hooks into your own config. It points prometheus_client's
multiprocess mode at a per-server directory (``PROMETHEUS_MULTIPROC_DIR``,
created and emptied at start, since stale files from an earlier run would be
summed into the new one) and tells prometheus_client when a worker dies so
its live gauges (``inference_in_flight``) stop counting.

Limits of multiprocess mode (prometheus_client's): no Info/Enum metrics
(modelmon's ``*_info`` KPIs are gauges set to 1 for that reason); custom
collectors (plugins) run only in the worker that answers the scrape; gauges
aggregate by the catalog's ``multiprocess_mode``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# Must happen before anything imports prometheus_client: it picks its value
# class (in-memory or memory-mapped files) once, at import time.
_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _dir:
    _dir = tempfile.mkdtemp(prefix="modelmon-multiproc-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _dir


def on_starting(server: Arbiter) -> None:
    # Runs once in the master before any worker imports prometheus_client.
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def child_exit(server: Arbiter, worker: Worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
