"""A Prometheus-compatible query API over the agent's local window.

``GET|POST /api/v1/query`` (``query``, ``time``) and ``/api/v1/query_range``
(``query``, ``start``, ``end``, ``step``) answer with Prometheus's JSON shapes,
as do the metadata endpoints a Grafana's query editor uses (``/api/v1/labels``,
``/api/v1/label/<name>/values``, ``/api/v1/series``, ``/api/v1/status/buildinfo``:
``metadata_api``) and the rules, alerts and metric metadata endpoints
(``/api/v1/rules``, ``/api/v1/alerts``, ``/api/v1/metadata``: ``rules_api``), so an
operator on the device (``modelmon edge query``) or a local Grafana can look at the
device while it is offline. Everything else goes to the wrapped app (the agent's
/metrics).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from modelmon.exporters.edge.metric_metadata import MetricMetadata
from modelmon.exporters.edge.promql import (
    MemoryStorage,
    PromQLError,
    Scalar,
    UnsupportedExpression,
    compile_expr,
)
from modelmon.exporters.edge.rules import metadata_api, rules_api
from modelmon.exporters.edge.rules.float_text import fixed
from modelmon.units import parse_duration

if TYPE_CHECKING:
    from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_POINTS = 11_000  # Prometheus's limit on points per series in a range query


MAX_FORM_BYTES = 1 << 20  # a PromQL query form; Prometheus's own limit is far larger, a device's memory is not


class BadRequest(ValueError):
    pass


def _form_body(environ: dict[str, Any]) -> str:
    """A POSTed form body, or BadRequest naming what is wrong with it."""
    text = environ.get("CONTENT_LENGTH") or "0"
    try:
        size = int(text)
    except ValueError:
        raise BadRequest(f"invalid Content-Length {text[:40]!r}") from None
    if size < 0 or size > MAX_FORM_BYTES:
        raise BadRequest(f"form body of {size} bytes: at most {MAX_FORM_BYTES} accepted")
    try:
        return bytes(environ["wsgi.input"].read(size)).decode()
    except UnicodeDecodeError:
        raise BadRequest("form body is not UTF-8") from None


def format_value(v: float) -> str:
    """Prometheus's ``strconv.FormatFloat(v, 'f', -1, 64)``."""
    return fixed(v)


# Prometheus keeps times as int64 milliseconds: anything beyond is not a time.
_MAX_SECONDS = 9.2e15


def _time(text: str | None, default: float, name: str) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            value = math.nan
    if not (math.isfinite(value) and abs(value) <= _MAX_SECONDS):
        raise BadRequest(f'invalid parameter "{name}": cannot parse "{text[:80]}" to a valid '
                         "timestamp")
    return value


def _step(text: str) -> float:
    """Seconds as a float, or a Prometheus duration ("15s", "1m30s"), as Prometheus reads it."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text, "step")
        except ValueError:
            value = math.nan
    if not (math.isfinite(value) and value <= _MAX_SECONDS):
        raise BadRequest(f'invalid parameter "step": cannot parse "{text[:80]}" to a valid '
                         "duration")
    return value


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class QueryAPI:
    """``lock`` guards ``storage`` and the state of ``rules`` (the runner's own lock);
    ``metric_metadata`` is what ``/api/v1/metadata`` answers from."""

    def __init__(self, storage: MemoryStorage, lock: threading.Lock, app: WSGIApp, *,
                 rules: EdgeRuleRunner | None = None,
                 metric_metadata: MetricMetadata | None = None) -> None:
        self.storage = storage
        self.lock = lock
        self.app = app
        self.rules = rules
        self.metric_metadata = metric_metadata

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if metadata_api.is_metadata_path(path):
            return self.metadata(path, environ, start_response)
        if path in rules_api.RULES_PATHS:
            return self.rules_endpoint(path, environ, start_response)
        if path not in ("/api/v1/query", "/api/v1/query_range"):
            return self.app(environ, start_response)
        try:
            params = parse_qs(environ.get("QUERY_STRING", ""))
            if environ.get("REQUEST_METHOD") == "POST":
                params.update(parse_qs(_form_body(environ)))
            args = {k: v[-1] for k, v in params.items()}
            data = self.range_query(args) if path.endswith("_range") else self.instant(args)
            status, body = "200 OK", {"status": "success", "data": data}
        except BadRequest as exc:
            status, body = "400 Bad Request", _error("bad_data", str(exc))
        except UnsupportedExpression as exc:
            status, body = "400 Bad Request", _error("bad_data", str(exc))
        except PromQLError as exc:
            status, body = "422 Unprocessable Entity", _error("execution", str(exc))
        return _answer(start_response, status, body)

    def metadata(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        allowed = ("GET", "POST") if path in ("/api/v1/labels", "/api/v1/series") else ("GET",)
        if method not in allowed:
            return _answer(start_response, "405 Method Not Allowed",
                           _error("bad_data", f"{method[:20]} not allowed on {path}"))
        try:
            # Every value of a repeated parameter (match[]); not UTF-8 is bad data.
            params = parse_qs(environ.get("QUERY_STRING", ""), errors="strict")
            if method == "POST":
                for key, values in parse_qs(_form_body(environ), errors="strict").items():
                    params.setdefault(key, []).extend(values)
            start = _time(params.get("start", [None])[-1], -math.inf, "start")
            end = _time(params.get("end", [None])[-1], math.inf, "end")
            with self.lock:
                data = metadata_api.answer(self.storage, path, params, start * 1000, end * 1000)
            status, body = "200 OK", {"status": "success", "data": data}
        except UnicodeDecodeError:
            status, body = "400 Bad Request", _error("bad_data", "parameters are not UTF-8")
        except (BadRequest, metadata_api.MetadataError) as exc:
            status, body = "400 Bad Request", _error("bad_data", str(exc))
        return _answer(start_response, status, body)

    def rules_endpoint(self, path: str, environ: dict[str, Any],
                       start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        allow = [("Allow", "GET, OPTIONS")]
        if method == "OPTIONS":  # as Prometheus's CORS pre-flight answer
            start_response("204 No Content", allow)
            return []
        if method != "GET":  # Prometheus 2.42 routes these for GET only
            return _answer(start_response, "405 Method Not Allowed",
                           _error("bad_data", f"{method[:20]} not allowed on {path}"), allow)
        try:
            # Bytes that are not UTF-8 become U+FFFD, as Go's strings.ToLower makes them
            # (Prometheus then quotes them in its error, or finds no such metric).
            params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True,
                              errors="replace")
            if path == "/api/v1/metadata":
                data: Any = rules_api.metadata(self.metric_metadata, params)
            else:
                with self.lock:
                    data = rules_api.rules(self.rules, params) if path == "/api/v1/rules" \
                        else rules_api.alerts(self.rules)
            status, body = "200 OK", {"status": "success", "data": data}
        except rules_api.RulesAPIError as exc:
            status, body = "400 Bad Request", _error("bad_data", str(exc))
        return _answer(start_response, status, body)

    def _compile(self, args: dict[str, str]) -> Any:
        text = args.get("query")
        if not text:
            raise BadRequest('invalid parameter "query": no query given')
        return compile_expr(text)

    def instant(self, args: dict[str, str]) -> dict[str, Any]:
        query = self._compile(args)
        t = _time(args.get("time"), time.time(), "time")
        t_ms = _ms(t)
        with self.lock:
            value = query.evaluate(self.storage, t_ms)
        if isinstance(value, Scalar):
            return {"resultType": "scalar", "result": [t_ms / 1000, format_value(value.value)]}
        return {"resultType": "vector", "result": [
            {"metric": dict(s.labels), "value": [t_ms / 1000, format_value(s.value)]}
            for s in value]}

    def range_query(self, args: dict[str, str]) -> dict[str, Any]:
        query = self._compile(args)
        start = _time(args.get("start"), math.nan, "start")
        end = _time(args.get("end"), math.nan, "end")
        if math.isnan(start) or math.isnan(end):
            raise BadRequest('invalid parameter "start"/"end": both are required')
        step = _step(args.get("step", ""))
        if end < start:
            raise BadRequest('invalid parameter "end": end timestamp must not be before start time')
        if step <= 0:
            raise BadRequest('invalid parameter "step": zero or negative query resolution step '
                             "widths are not accepted. Try a positive integer")
        if (end - start) / step > MAX_POINTS:
            raise BadRequest("exceeded maximum resolution of 11,000 points per timeseries. "
                             "Try decreasing the query resolution (?step=XX)")
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        step_ms, t_ms, end_ms = _ms(step), _ms(start), _ms(end)
        with self.lock:
            while t_ms <= end_ms:
                value = query.evaluate(self.storage, t_ms)
                samples = [((), value.value)] if isinstance(value, Scalar) else \
                    [(s.labels, s.value) for s in value]
                for labels, v in samples:
                    # A range result has no __name__-less duplicates to merge: one series
                    # per label set, as Prometheus's rangeEval builds them.
                    series.setdefault(labels, []).append([t_ms / 1000, format_value(v)])
                t_ms += step_ms
        return {"resultType": "matrix", "result": [
            {"metric": dict(labels), "values": values} for labels, values in series.items()]}


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any],
            headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(payload))), *headers])
    return [payload]


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorType": kind, "error": message}
