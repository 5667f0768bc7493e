"""Names a package resolves on first access (PEP 562), so importing it stays light.

``modelmon`` itself and the product packages use it: the command line loads
every product's commands, and ``gunicorn_config`` must run before anything
imports prometheus_client, so a package's ``__init__`` imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) and
    returns its attribute ``name``; other names raise AttributeError."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
