"""The ECS document of a plain stdlib log record, written straight to JSON.

``ecs.from_log_record`` builds the event as six nested dicts that orjson then
serialises; for the common record (no exception, no ``extra`` fields, a str
message) this writes the same bytes from a template instead, about a
microsecond less on the caller's thread per logging call. Used only when the
shipper's processors cannot change such a record beyond its message: none, or
the built-in PII redactor without field rules (it scans only ``message`` of
such a record). ``tests/unit/logs/test_ecs_record.py`` holds both paths to the
same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from modelmon.exporters.logs import ecs

_dumps = orjson.dumps
_MAX_NAMES = 4096  # distinct logger, file, function and thread names remembered


class RecordSerializer:
    """``serialize(record, trace_id)``: the JSON document of a plain record."""

    def __init__(self, base: dict[str, Any],
                 redact_message: Callable[[str], str] | None = None) -> None:
        head = _dumps(base)
        self._head = (head[:-1] + b"," if base else b"{") + b'"@timestamp":"'
        self._redact = redact_message
        self._names: dict[Any, bytes] = {}  # name -> its JSON

    @staticmethod
    def is_plain(record: logging.LogRecord) -> bool:
        """What the template covers; anything else takes ``ecs.from_log_record``."""
        return (type(record.msg) is str and not record.exc_info and not record.exc_text
                and len(record.__dict__) == ecs._STANDARD_COUNT
                and type(record.lineno) is int and type(record.process) is int)

    def _name(self, value: Any) -> bytes:
        names = self._names
        out = names.get(value)
        if out is None:
            out = _dumps(value)
            if len(names) >= _MAX_NAMES:
                names.clear()
            names[value] = out
        return out

    def serialize(self, record: logging.LogRecord, trace_id: str | None) -> bytes:
        message = record.msg if not record.args else record.getMessage()
        if self._redact is not None:
            message = self._redact(message)
        name = self._name
        tail = b"}" if trace_id is None else b',"trace":{"id":' + _dumps(trace_id) + b"}}"
        return (
            b'%s%s","log":{"level":%s,"logger":%s,"origin":{"file":{"name":%s,"line":%d},'
            b'"function":%s}},"message":%s,"process":{"pid":%d,"thread":{"name":%s}},'
            b'"event":{"kind":"event","dataset":"modelmon.log"}%s'
        ) % (
            self._head, ecs.record_timestamp(record.created).encode(),
            name(ecs._LEVELS.get(record.levelno) or record.levelname.lower()),
            name(record.name), name(record.filename), record.lineno, name(record.funcName),
            _dumps(message), record.process, name(record.threadName), tail,
        )
