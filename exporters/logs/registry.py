"""Sinks and log processors provided by plugins (built-ins included)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelmon.plugin_manager import get_plugin_manager

log = logging.getLogger(__name__)


def sink_factories() -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    factories: dict[str, Callable[[Mapping[str, Any]], Any]] = {}

    def register(name: str, factory: Callable[[Mapping[str, Any]], Any]) -> None:
        factories[name] = factory

    get_plugin_manager().hook.modelmon_register_sinks(register=register)
    return factories


def log_processors(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, processor) in ascending ``order``; a plugin whose hook raises is
    logged and skipped."""
    found: list[tuple[int, int, str, Any]] = []

    def register(name: str, processor: Any, order: int = 100) -> None:
        found.append((order, len(found), name, processor))

    pm = get_plugin_manager()
    for impl in pm.hook.modelmon_register_log_processors.get_hookimpls():
        try:
            impl.function(**{a: v for a, v in (("register", register), ("config", config))
                             if a in impl.argnames})
        except Exception:
            log.exception("log processor plugin %s failed to register", impl.plugin_name)
    return [(name, proc) for _, _, name, proc in sorted(found, key=lambda f: (f[0], f[1]))]
