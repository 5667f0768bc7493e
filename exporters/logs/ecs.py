"""Elastic Common Schema (ECS) helpers: timestamps, the base fields, log records.

Model fields live under one custom namespace, ``model.*`` (``model.name``,
``model.version``, ``model.prediction``...), so they never collide with ECS.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from typing import Any

from modelmon.exporters.logs.ecs_schema import ECS_VERSION
from modelmon.exporters.logs.fields import add_extra, keyword

MODEL_NAMESPACE = "model"

_HOSTNAME = socket.gethostname()
_PID = os.getpid()


_second: tuple[int, str] = (-1, "")
# "000Z" .. "999Z": a list index is a third of the cost of formatting per call.
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


def timestamp(t: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds, as Elasticsearch's date type expects."""
    global _second
    if t is None:
        t = time.time()
    secs = int(t)
    cached = _second  # one tuple read: safe without a lock
    if cached[0] != secs:
        cached = _second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(secs)))
    return cached[1] + _MILLIS[int((t - secs) * 1000)]


def base_fields(service_name: str, environment: str | None = None) -> dict[str, Any]:
    """Fields every event carries; computed once per shipper."""
    fields: dict[str, Any] = {
        "ecs": {"version": ECS_VERSION},
        "service": {"name": service_name},
        "host": {"hostname": _HOSTNAME, "name": _HOSTNAME},
    }
    if environment:
        fields["service"]["environment"] = environment
    return fields


def error_fields(exc: BaseException, with_stack: bool = True) -> dict[str, Any]:
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not lose the event
        message = f"<unprintable {type(exc).__name__}>"
    err: dict[str, Any] = {"type": type(exc).__name__, "message": message}
    if with_stack:
        err["stack_trace"] = "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        )
    return err


_LEVELS = {50: "critical", 40: "error", 30: "warning", 20: "info", 10: "debug"}
# LogRecord attributes that are not user "extra" fields.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}
# A record with more attributes than a bare one has extras (or was formatted).
_STANDARD_COUNT = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


def record_timestamp(created: float) -> str:
    """``timestamp(created)`` for a record's time, inlined: once per log call."""
    secs = int(created)
    cached = _second
    return (cached[1] if cached[0] == secs else timestamp(secs)[:-4]) + _MILLIS[
        int((created - secs) * 1000)]


def from_log_record(record: logging.LogRecord, base: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """An ECS event for a stdlib log record; ``extra={...}`` fields are kept.
    ``base``: fields to start from (a shipper's ``ecs``, ``service``, ``host``)."""
    stamp = record_timestamp(record.created)
    msg = record.msg
    # getMessage() without its call and str() when there is nothing to format.
    message = msg if type(msg) is str and not record.args else record.getMessage()
    event: dict[str, Any] = {
        **(base or {}),
        "@timestamp": stamp,
        "log": {
            "level": _LEVELS.get(record.levelno) or record.levelname.lower(),
            "logger": record.name,
            "origin": {
                "file": {"name": record.filename, "line": record.lineno},
                "function": record.funcName,
            },
        },
        "message": message,
        "process": {"pid": record.process, "thread": {"name": record.threadName}},
        "event": {"kind": "event", "dataset": "modelmon.log"},
    }
    if record.exc_info and record.exc_info[1] is not None:
        event["error"] = error_fields(record.exc_info[1])
    elif record.exc_text:
        event["error"] = {"stack_trace": keyword(record.exc_text)}
    attrs = record.__dict__
    if len(attrs) > _STANDARD_COUNT:  # only records logged with extra={...}
        for key in attrs.keys() - _RECORD_ATTRS:
            if not key.startswith("_"):
                add_extra(event, key, attrs[key])
    return event
