"""The one plugin manager.

The built-in plugins (``DEFAULT_PLUGINS``: the built-in collectors, sinks and
redactor, and the products' commands) are registered by import path, always,
like llm's and datasette's: no allow-list can remove a sink or switch
redaction off. Third-party plugins are found through the ``modelmon``
entry-point group; ``MODELMON_PLUGINS`` is their allow-list, a comma-separated
list of entry-point names to load (unset: load all; empty: load none). A
plugin that fails to import is logged and recorded in ``load_failures`` (it
then reports ``modelmon_collector_success 0``); it never stops modelmon.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import pluggy

from modelmon import hookspecs

log = logging.getLogger(__name__)

ALLOWLIST_ENV = "MODELMON_PLUGINS"

# Registered under the name after the colon, whatever MODELMON_PLUGINS says.
# Import paths, not imports: core depends on none of them (the products build
# on core, never the other way).
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("build_info", "modelmon.plugins.build_info"),
    ("system", "modelmon.plugins.system"),
    ("docker", "modelmon.plugins.docker"),
    ("nvml", "modelmon.plugins.nvml"),
    ("log_sinks", "modelmon.plugins.sinks"),
    ("redact", "modelmon.plugins.redact"),
    ("edge_alert_webhook", "modelmon.plugins.edge_alert_webhook"),
    ("serve_commands", "modelmon.exporters.service.cli"),
    ("quality_commands", "modelmon.exporters.quality.cli"),
    ("logs_commands", "modelmon.exporters.logs.cli"),
    ("edge_commands", "modelmon.exporters.edge.cli"),
    ("dashboards_commands", "modelmon.dashboards.cli"),
    ("demo_commands", "modelmon.demo.cli"),
)

_pm: pluggy.PluginManager | None = None
_load_failures: dict[str, str] = {}
_lock = threading.Lock()


def allowed_plugins() -> set[str] | None:
    """Entry-point names allowed by MODELMON_PLUGINS, or None when unset (all)."""
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module in DEFAULT_PLUGINS:
        _register(pm, name, module, functools.partial(importlib.import_module, module))
    allowed = allowed_plugins()
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.has_plugin(ep.name):
            log.warning("modelmon plugin %r (%s) not loaded: a plugin of that name is "
                        "already registered; rename its entry point", ep.name, ep.value)
            continue
        _register(pm, ep.name, ep.value, ep.load)
    # A misspelled hook implementation fails loudly instead of never running.
    pm.check_pending()
    return pm


def _register(pm: pluggy.PluginManager, name: str, where: str,
              load: Callable[[], object]) -> None:
    try:
        pm.register(load(), name=name)
    except Exception as exc:  # a broken plugin must not take modelmon down
        log.exception("modelmon plugin %r (%s) failed to load", name, where)
        _load_failures[name] = f"{type(exc).__name__}: {exc}"


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    with _lock:
        if _pm is None:
            _pm = _new_manager()
        return _pm


def load_failures() -> dict[str, str]:
    """Plugins that failed to load: entry-point name -> error."""
    get_plugin_manager()
    return dict(_load_failures)


def reset() -> None:
    """Forget the manager so the next call reloads plugins (after MODELMON_PLUGINS changes)."""
    global _pm
    with _lock:
        _pm = None
        _load_failures.clear()


def plugin_names() -> list[str]:
    pm = get_plugin_manager()
    return sorted(name for name, _ in pm.list_name_plugin() if name is not None)


def describe() -> list[dict[str, Any]]:
    """One row per plugin for ``modelmon plugins``: name, hooks, status."""
    pm = get_plugin_manager()
    rows: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "hooks": hooks, "status": "loaded"})
    for name, error in _load_failures.items():
        rows.append({"name": name, "hooks": [], "status": f"failed: {error}"})
    return sorted(rows, key=lambda r: r["name"])
