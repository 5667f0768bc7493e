"""Old import path (`gunicorn -c python:modelmon.exporters.gunicorn_config`), kept so
users' configs keep working: this module now lives in
``modelmon.exporters.service.gunicorn_config``."""

from modelmon.exporters.service.gunicorn_config import child_exit, on_starting

__all__ = ["child_exit", "on_starting"]
