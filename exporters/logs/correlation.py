"""Correlation ids: one id per incoming request, on every event of that request.

The web integration calls ``begin_request(headers)`` when a request arrives
and ``end_request(token)`` when it ends; ``current()`` is what the shipper
attaches to events as ``trace.id``. The id comes from a configurable header
(``X-Request-ID`` by default) or is generated, and is returned to the client
in the same header. ``flask_hooks(app)`` wires this into a plain Flask app;
``instrument_app`` does the same inside its own WSGI wrapper (one hook fewer
per request) when the monitor ships logs.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Flask is imported only by the apps that use these hooks.
    from flask import Flask, Response

DEFAULT_HEADER = "X-Request-ID"
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modelmon_correlation_id", default=None
)
# An incoming id is echoed in a response header and stored in logs: accept only
# a short token so a client cannot inject header lines or huge values.
_VALID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def current() -> str | None:
    """The correlation id of the request being handled, if any."""
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


def begin_request(
    headers: Mapping[str, str] | Any, header: str = DEFAULT_HEADER
) -> tuple[str, contextvars.Token[str | None]]:
    """Take the id from ``header`` (or make one) and make it current."""
    incoming = headers.get(header) if headers is not None else None
    cid = incoming if isinstance(incoming, str) and _VALID.match(incoming) else new_id()
    return cid, _current.set(cid)


def end_request(token: contextvars.Token[str | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:  # reset in another context (streaming responses): just clear
        _current.set(None)


def set_current(cid: str | None) -> contextvars.Token[str | None]:
    """Make ``cid`` current outside of a web request (workers, batch jobs)."""
    return _current.set(cid)


def flask_hooks(app: Flask, header: str = DEFAULT_HEADER) -> None:
    """Attach the correlation id to every request of a Flask ``app`` and echo it
    in the ``header`` response header."""
    from flask import g, request

    @app.before_request
    def _modelmon_correlation_begin() -> None:
        cid, token = begin_request(request.headers, header)
        g._modelmon_correlation = (cid, token)

    @app.after_request
    def _modelmon_correlation_header(response: Response) -> Response:
        state = getattr(g, "_modelmon_correlation", None)
        if state is not None:
            response.headers[header] = state[0]
        return response

    @app.teardown_request
    def _modelmon_correlation_end(exc: BaseException | None) -> None:
        state = getattr(g, "_modelmon_correlation", None)
        if state is not None:
            end_request(state[1])
