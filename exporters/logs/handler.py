"""A stdlib ``logging.Handler`` that ships every record through a LogShipper."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelmon.exporters.logs.correlation import current as _current_correlation
from modelmon.exporters.logs.ecs import from_log_record
from modelmon.exporters.logs.ecs_record import RecordSerializer
from modelmon.spool import SpoolFull

if TYPE_CHECKING:
    from modelmon.exporters.logs.shipper import LogShipper

_is_plain = RecordSerializer.is_plain
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
        # processors allow it; see ecs_record. Bound once: this runs per call.
        serializer = shipper.record_serializer()
        self._compact = None if serializer is None else serializer.compact
        self._append = shipper.spool.append

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
        compact = self._compact
        try:
            # Rendered as ECS JSON (and redacted) by the shipper's worker.
            data = compact(record, _current_correlation()) if (
                compact is not None and _is_plain(record)) else None
        except Exception:  # a message orjson cannot write (a lone surrogate, say)
            data = None
        if data is None:
            try:
                # The base fields go in while the dict is built: one merge less.
                # emit_complete counts what it cannot spool as dropped{error}.
                self.shipper.emit_complete(from_log_record(record, self.shipper.base_fields))
            except Exception:
                self.handleError(record)
            return
        try:
            self._append(data)
        except SpoolFull:
            pass  # counted by the spool as dropped{block_timeout}
        except Exception as exc:
            self.shipper._count_error(exc)
