"""A stdlib ``logging.Handler`` that ships every record through a LogShipper.

One path for every record: on the calling thread it becomes its final ECS
document, runs the shipper's processors (the PII redactor by default) and is
spooled as JSON. So, with redaction on, what rests in the spool is already
redacted; the shipper's worker only sends it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelmon.exporters.logs.ecs import from_log_record

if TYPE_CHECKING:
    from modelmon.exporters.logs.shipper import LogShipper

# Records logged by the shipper's own threads (the sink's HTTP client, the
# spool) are not shipped: each bulk request would log, and ship, more events.
_OWN_THREADS = frozenset({"modelmon-log-shipper", "modelmon-log-sender", "modelmon-log-adopter",
                          "modelmon-spool"})


class ShipperHandler(logging.Handler):
    """``logging.getLogger().addHandler(shipper.handler())``: existing ``logging``
    calls become ECS events; ``extra={...}`` fields are kept."""

    def __init__(self, shipper: LogShipper, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.shipper = shipper
        # Bound once: this runs per logging call.
        self._base = shipper.base_fields
        self._emit_complete = shipper.emit_complete

    def handle(self, record: logging.LogRecord) -> Any:
        """``Handler.handle`` without the handler's lock: ``emit`` is thread-safe
        (the spool has its own lock; processors already run concurrently for
        ``emit`` and ``mon.log``), and the lock cost a logging call ~0.3-1 us."""
        rv: Any = True
        if self.filters:
            rv = self.filter(record)
            if not rv:
                return rv
            if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may replace it
                record = rv
        self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName in _OWN_THREADS:
            return
        try:
            # The base fields go in while the dict is built: one merge less.
            event = from_log_record(record, self._base)
        except Exception:
            self.handleError(record)
            return
        # Never raises; what cannot be spooled is counted as dropped{error}.
        self._emit_complete(event)
