"""Plain stdlib log records: spooled compact by the caller, written as ECS JSON
by the shipper's worker.

For the common record (no exception, no ``extra`` fields, a str message) the
logging call only formats the message and spools the record's few fields as
one JSON array (``compact``: a single orjson call); the shipper's worker turns
it into the ECS document (``render``) from a template, with the PII redactor
run there. Why: inside a ``logger.info`` each piece of Python the caller runs
costs about twice what it costs alone, and building the document there was
half of the handler's cost (see BENCHMARKS.md). The document is the one
``ecs.from_log_record`` and the processors would make; the fast rendering is
used when the shipper's processors cannot change such a record beyond its
message (none, or the built-in redactor without field rules), else the
shipper renders through the general path. ``tests/unit/exporters/logs/test_ecs_record.py``
holds both to the same bytes.

A compact record is a JSON array (``[``), every other spooled event a JSON
object (``{``). Its last field names the *render profile* it was spooled
under: the shipper's base fields (service, host...) and redaction options,
saved once in the spool slot as ``render-<id>.json`` before any record uses
it. A record is rendered with its own profile, whichever process ships it (a
restart with another configuration, or the adopter of an orphaned slot):
as the document it would have been when it was logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from modelmon.exporters.logs import ecs

_dumps = orjson.dumps
_loads = orjson.loads
COMPACT_MARK = b"["  # a compact record's first byte; a document's is "{"
_FIELDS = 12


def compact_fields(payload: bytes) -> list[Any]:
    """[created, levelno, levelname, name, filename, lineno, funcName, message,
    process, threadName, trace_id, profile id] of a compact record."""
    fields = _loads(payload)
    if not isinstance(fields, list) or len(fields) != _FIELDS:
        raise ValueError(f"not a compact log record: expected an array of {_FIELDS} fields")
    return fields


def save_profile(directory: Path, base: dict[str, Any],
                 redact: dict[str, bool] | None) -> str:
    """Save a render profile in ``directory``, durably, before any record names it;
    returns its id. Written anew at every start (a file an earlier start left may
    be torn or not yet on disk): a few hundred bytes, once."""
    from modelmon.spool_journal import fsync_dir, write_all

    profile = {"base": base, "redact": redact}
    data = _dumps(profile)  # insertion order kept: the head bytes render from it
    pid = hashlib.sha256(data).hexdigest()[:16]
    path = directory / f"render-{pid}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(directory)
    return pid


def load_profile(directory: Path, pid: str) -> tuple[dict[str, Any], dict[str, bool] | None]:
    """(base fields, redaction options or None) of profile ``pid`` saved in ``directory``."""
    if not isinstance(pid, str) or not pid.isalnum():
        raise ValueError(f"not a render profile id: {pid!r}")
    profile = _loads((directory / f"render-{pid}.json").read_bytes())
    return profile["base"], profile["redact"]


_MAX_NAMES = 4096  # distinct logger, file, function and thread names remembered


class RecordSerializer:
    """``compact(record, trace_id)`` on the caller, ``render(payload)`` on the worker."""

    def __init__(self, base: dict[str, Any],
                 redact_message: Callable[[str], str] | None = None, profile: str = "") -> None:
        self.profile = profile
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

    def compact(self, record: logging.LogRecord, trace_id: str | None) -> bytes:
        """What the calling thread spools for a plain record."""
        return _dumps((
            record.created, record.levelno, record.levelname, record.name, record.filename,
            record.lineno, record.funcName,
            record.msg if not record.args else record.getMessage(),
            record.process, record.threadName, trace_id, self.profile,
        ))

    def render(self, payload: bytes) -> bytes:
        """The ECS document of a ``compact`` record (of this serializer's profile)."""
        return self.render_fields(compact_fields(payload))

    def render_fields(self, fields: list[Any]) -> bytes:
        (created, levelno, levelname, logger, filename, lineno, function, message, process,
         thread, trace_id, _) = fields
        if self._redact is not None:
            message = self._redact(message)
        name = self._name
        tail = b"}" if trace_id is None else b',"trace":{"id":' + _dumps(trace_id) + b"}}"
        return (
            b'%s%s","log":{"level":%s,"logger":%s,"origin":{"file":{"name":%s,"line":%d},'
            b'"function":%s}},"message":%s,"process":{"pid":%d,"thread":{"name":%s}},'
            b'"event":{"kind":"event","dataset":"modelmon.log"}%s'
        ) % (
            self._head, ecs.record_timestamp(created).encode(),
            name(ecs._LEVELS.get(levelno) or levelname.lower()),
            name(logger), name(filename), lineno, name(function),
            _dumps(message), process, name(thread), tail,
        )

    def serialize(self, record: logging.LogRecord, trace_id: str | None) -> bytes:
        """The document of a plain record in one step (``render(compact(...))``)."""
        return self.render(self.compact(record, trace_id))
