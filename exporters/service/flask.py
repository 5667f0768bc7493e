"""Flask integration: ``instrument_app(app, mon)`` adds /metrics and per-endpoint metrics.

Per request it reads the clock twice and updates cached label children; the
endpoint label is the route template (``/predict/<model>``), never the raw
path, so cardinality stays bounded. POST/PUT bodies and their responses feed
``modelmon_payload_bytes``. Under gunicorn with several workers, set
``PROMETHEUS_MULTIPROC_DIR`` (``modelmon.exporters.service.gunicorn_config`` does)
and /metrics aggregates all workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram
from werkzeug.wsgi import get_content_length

from modelmon.collectors import PluginCollectors, register_plugin_collectors
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.exporters.service.scrape import multiprocess_dir, render, scrape_registry_factory

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from flask import Request
    from werkzeug.local import LocalProxy

UNMATCHED = "__unmatched__"
# The method comes from the client: anything outside the standard set is
# reported as "other", so made-up methods cannot create series.
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_START_KEY = "modelmon.request_start"
_CID_KEY = "modelmon.correlation_id"
_FROM_LOGS = object()
_perf_counter = time.perf_counter


def instrument_app(
    app: Flask,
    mon: ModelMonitor,
    *,
    metrics_path: str | None = "/metrics",
    plugins: bool = True,
    exclude_paths: tuple[str, ...] = ("/metrics", "/healthz"),
    correlation_header: str | None | object = _FROM_LOGS,
    max_series: int | None = None,
) -> Flask:
    """Instrument ``app``: per-endpoint request metrics and a ``metrics_path`` route.

    ``mon`` gives the registry, prefix and the model/version labels. With
    ``plugins`` the plugin collectors are served on the same /metrics, each
    behind its error boundary. ``correlation_header`` (``X-Request-ID`` by
    default when ``mon`` ships logs, off otherwise) names the header a request's
    correlation id is taken from (generated when absent); every log event of
    the request carries it as ``trace.id`` and the response returns it.
    ``max_series`` sets the series budget of ``mon``'s registry (see
    ``ModelMonitor``; default 5000): a server with many routes or models that
    needs more says so here or on the monitor.
    """
    if correlation_header is _FROM_LOGS:
        correlation_header = "X-Request-ID" if mon.logs is not None else None
    header = correlation_header if isinstance(correlation_header, str) else None
    m = mon.metrics
    m.adopt_series_budget(max_series)
    requests_total = m.counter("http_requests_total")
    duration = m.histogram("http_request_duration_seconds")
    model, version = mon.model, mon.version
    request_bytes, response_bytes = mon._request_bytes, mon._response_bytes
    counters: dict[tuple[str, str, int], Counter] = {}
    histograms: dict[tuple[str, str], Histogram] = {}
    skip = frozenset(exclude_paths)

    collectors: tuple[object, ...] = ()
    if plugins:
        if multiprocess_dir() is None:
            register_plugin_collectors(m.registry, prefix=m.prefix)
        else:  # the scrape registry is built per scrape; plugins join it there
            collectors = (PluginCollectors(prefix=m.prefix),)
    scrape_registry = scrape_registry_factory(m.registry, collectors)

    # The start time rides in the WSGI environ, stamped by a thin wrapper
    # around app.wsgi_app: a before_request hook costs Flask's hook dispatch
    # plus two `g` proxy lookups per request, and would miss requests that an
    # earlier before_request hook (auth) answers itself.
    inner_wsgi_app = app.wsgi_app

    def timed_wsgi_app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        environ[_START_KEY] = _perf_counter()
        return inner_wsgi_app(environ, start_response)

    if header is not None:
        from modelmon.exporters.logs import correlation

        env_key = "HTTP_" + header.upper().replace("-", "_")

        def correlated_wsgi_app(
            environ: WSGIEnvironment, start_response: StartResponse
        ) -> Iterable[bytes]:
            environ[_START_KEY] = _perf_counter()
            cid, token = correlation.begin_request({header: environ.get(env_key)}, header)
            environ[_CID_KEY] = cid
            try:
                return inner_wsgi_app(environ, start_response)
            finally:
                correlation.end_request(token)

    def after(response: Response) -> Response:
        # One proxy lookup, not five (flask types its proxy as the Request itself).
        req = cast("LocalProxy[Request]", request)._get_current_object()
        environ = req.environ
        start = environ.pop(_START_KEY, None)
        if start is None:
            return response
        elapsed = _perf_counter() - start
        if header is not None:
            response.headers[header] = environ[_CID_KEY]
        if req.path in skip:
            return response
        rule = req.url_rule
        endpoint = rule.rule if rule is not None else UNMATCHED
        method = req.method
        if method not in _METHODS:
            method = "other"
        status = response.status_code
        key = (endpoint, method, status)
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = requests_total.labels(
                model, version, endpoint, method, str(status)
            )
        hist = histograms.get((endpoint, method))
        if hist is None:
            hist = histograms[(endpoint, method)] = duration.labels(
                model, version, endpoint, method
            )
        counter.inc()
        hist.observe(elapsed)
        if method == "POST" or method == "PUT":
            length = get_content_length(environ)  # what req.content_length parses, minus 2 lookups
            if length is not None:
                request_bytes.observe(length)
            if not response.is_streamed:
                out = response.content_length
                if out is not None:
                    response_bytes.observe(out)
        return response

    app.wsgi_app = correlated_wsgi_app if header is not None else timed_wsgi_app  # type: ignore[method-assign]
    app.after_request(after)

    if metrics_path:

        def metrics() -> Response:
            body, content_type = render(scrape_registry(), request.headers.get("Accept"))
            return Response(body, content_type=content_type)

        app.add_url_rule(metrics_path, "modelmon_metrics", metrics, methods=["GET"])
    return app
