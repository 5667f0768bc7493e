"""The agent's local HTTP listener: /metrics, plus the query API when rules run.

A threaded server as ``prometheus_client.start_http_server`` runs, serving
:func:`modelmon.exposition.metrics_app` so OpenMetrics scrapes stay valid to the
strict parser (signed histograms; see modelmon.exposition).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client.exposition import (
    ThreadingWSGIServer,
    _SilentHandler,  # prometheus_client's own quiet handler: no access log on stderr
)

log = logging.getLogger(__name__)

# A client that sends its request (or reads its answer) slower than this loses its
# connection: without it, each stalled connection holds a thread for ever.
CLIENT_TIMEOUT_SECONDS = 10.0


class _Handler(_SilentHandler):
    timeout = CLIENT_TIMEOUT_SECONDS  # StreamRequestHandler sets it on the socket


def serve(host: str, port: int, app: Callable[..., Any]) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; returns the server."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        def handle_error(self, request: Any, client_address: Any) -> None:
            # socketserver prints every traceback on stderr; a client that stalls or
            # hangs up is its own problem, not the device's log's.
            if isinstance(sys.exc_info()[1], TimeoutError | ConnectionError):
                return
            log.warning("local listener: error serving %s", client_address, exc_info=True)

    httpd = make_server(host, port, app, Server, handler_class=_Handler)
    threading.Thread(target=httpd.serve_forever, name="modelmon-edge-http", daemon=True).start()
    return httpd
