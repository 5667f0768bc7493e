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
    """(name, processor) in ascending ``order``.

    A processor plugin that fails to set up stops the shipper from starting
    (ValueError naming the plugin): processors redact PII, and shipping
    events without them would leak what the configuration meant to hide.
    """
    found: list[tuple[int, int, str, Any]] = []

    def register(name: str, processor: Any, order: int = 100) -> None:
        found.append((order, len(found), name, processor))

    pm = get_plugin_manager()
    for impl in pm.hook.modelmon_register_log_processors.get_hookimpls():
        try:
            impl.function(**{a: v for a, v in (("register", register), ("config", config))
                             if a in impl.argnames})
        except Exception as exc:
            raise ValueError(
                f"logs: log processor plugin {impl.plugin_name!r} failed to set up ({exc}); "
                "fix its settings (for redact: logs.redact), or leave it out with "
                "MODELMON_PLUGINS; events are not shipped without their processors"
            ) from exc
    return [(name, proc) for _, _, name, proc in sorted(found, key=lambda f: (f[0], f[1]))]
