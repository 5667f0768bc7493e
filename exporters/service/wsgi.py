"""Run a WSGI app on gunicorn, embedded, never on the Flask development server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from modelmon.exporters.service.http_worker import ReadLimits, worker_class
from modelmon.exporters.service.web_config import TLSConfig

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _EmbeddedGunicorn(BaseApplication):
    def __init__(self, app_factory: Callable[[], WSGIApplication], options: dict[str, object]) -> None:
        self._factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    # gunicorn's stubs type the WSGI environ as a MutableMapping, typeshed's as a dict.
    def load(self) -> WSGIApplication:  # type: ignore[override]
        return self._factory()


def gunicorn_options(
    host: str, port: int, *, workers: int = 1, threads: int = 8, tls: TLSConfig | None = None,
    limits: ReadLimits | None = None, on_ready: Callable[[], None] | None = None,
) -> dict[str, object]:
    """gunicorn settings for ``modelmon serve``.

    ``limits`` bound how long and how much a client may take to send a request
    (see http_worker.py); ``on_ready`` runs once the listening socket is bound.
    """
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    tls_context = peer_check = None
    if tls is not None:
        from modelmon.exporters.service.tls_context import ContextSource, peer_allowed

        # Built here, in the master, so a bad key fails before anything is served.
        source = ContextSource(tls)
        tls_context = source.context
        if tls.client_allowed_sans is not None:
            def peer_check(sock: Any) -> bool:
                return peer_allowed(tls, sock)
    options: dict[str, object] = {
        "bind": [bind],
        "workers": workers,
        "worker_class": worker_class(limits or ReadLimits(), tls_context, peer_check),
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "modelmon",
    }
    if tls is not None and tls.cert_file is not None:
        # The worker does TLS itself; gunicorn only needs to know for wsgi.url_scheme.
        options["certfile"] = str(tls.cert_file)
    if on_ready is not None:
        options["when_ready"] = lambda _server: on_ready()
    return options


def run_gunicorn(app_factory: Callable[[], WSGIApplication], options: dict[str, object]) -> None:
    """Serve ``app_factory()`` until SIGINT/SIGTERM. The app is built in the worker."""
    _EmbeddedGunicorn(app_factory, options).run()
