"""Run a WSGI app on gunicorn, embedded, never on the Flask development server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gunicorn.app.base import BaseApplication

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
    host: str, port: int, *, workers: int = 1, threads: int = 8, tls: TLSConfig | None = None
) -> dict[str, object]:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options: dict[str, object] = {
        "bind": [bind],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "modelmon",
    }
    if tls is not None:
        options.update(certfile=str(tls.cert_file), keyfile=str(tls.key_file))
        if tls.client_ca_file is not None:
            options["ca_certs"] = str(tls.client_ca_file)
        options["cert_reqs"] = tls.client_auth
    return options


def run_gunicorn(app_factory: Callable[[], WSGIApplication], options: dict[str, object]) -> None:
    """Serve ``app_factory()`` until SIGINT/SIGTERM. The app is built in the worker."""
    _EmbeddedGunicorn(app_factory, options).run()
