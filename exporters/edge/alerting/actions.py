"""Local actions on edge alerts: the ``modelmon_on_edge_alert`` hook.

When an alert starts firing or resolves on the device, every plugin
implementing the hook is called with it, online or offline, so a site can act
without the cloud (run a command, call a local webhook, light a lamp). The
calls run on one thread of their own, never on the agent's collection: a
slow or failing action delays or loses nothing else. Each implementation runs
in its own error boundary (an exception is logged, the others still run).
The queue is bounded; when actions fall that far behind, changes are dropped
and counted (``dropped``), and the Alertmanager path is unaffected.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

import pluggy

log = logging.getLogger(__name__)

MAX_QUEUED = 1000


class AlertActions:
    def __init__(self, pm: pluggy.PluginManager,
                 plugin_config: Mapping[str, Mapping[str, Any]]) -> None:
        self._impls = [(impl, dict(plugin_config.get(impl.plugin_name, {})))
                       for impl in pm.hook.modelmon_on_edge_alert.get_hookimpls()]
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.failed = 0
        self.called = 0

    def __bool__(self) -> bool:
        return bool(self._impls)

    def start(self) -> None:
        if self._impls and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelmon-edge-alert-actions",
                                            daemon=True)
            self._thread.start()

    def submit(self, change: dict[str, Any]) -> None:
        """Queue one state change (an API v2 alert with ``status``); never blocks."""
        if not self._impls:
            return
        try:
            self._queue.put_nowait(change)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("edge alert actions fall behind: %d alert changes dropped so far",
                            self.dropped)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (change := self._queue.get()) is not None:
            self.call(change)

    def call(self, change: dict[str, Any]) -> None:
        """Run every implementation on ``change`` now, each in its own error boundary."""
        for impl, config in self._impls:
            kwargs = {"alert": change, "config": config}
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
                self.called += 1
            except Exception:
                self.failed += 1
                log.exception("plugin %r failed in modelmon_on_edge_alert for %s",
                              impl.plugin_name, change.get("labels", {}).get("alertname"))
