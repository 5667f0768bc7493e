"""A stdlib ``logging.Handler`` that ships every record through a LogShipper."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelmon.exporters.logs.correlation import current as _current_correlation
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
        # Plain records (most of them) are spooled compact when the shipper's
        # processors allow it; see ecs_record.
        self._serializer = shipper.record_serializer()

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName in _OWN_THREADS:
            return
        try:
            shipper = self.shipper
            serializer = self._serializer
            if serializer is not None and serializer.is_plain(record):
                # Rendered as ECS JSON (and redacted) by the shipper's worker.
                shipper.emit_serialized(serializer.compact(record, _current_correlation()))
            else:
                # The base fields go in while the dict is built: one merge less.
                shipper.emit_complete(from_log_record(record, shipper.base_fields))
        except Exception:
            self.handleError(record)
