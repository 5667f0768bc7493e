"""The agent's local HTTP listener: /metrics, plus the query API when rules run.

A threaded server as ``prometheus_client.start_http_server`` runs, serving
:func:`modelmon.exposition.metrics_app` so OpenMetrics scrapes stay valid to the
strict parser (signed histograms; see modelmon.exposition).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client.exposition import (
    ThreadingWSGIServer,
    _SilentHandler,  # prometheus_client's own quiet handler: no access log on stderr
)


def serve(host: str, port: int, app: Callable[..., Any]) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; returns the server."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(host, port, app, Server, handler_class=_SilentHandler)
    threading.Thread(target=httpd.serve_forever, name="modelmon-edge-http", daemon=True).start()
    return httpd
