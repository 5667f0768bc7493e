"""The one plugin manager.

Plugins, built-in ones included, are found through the ``modelmon``
entry-point group. ``MODELMON_PLUGINS`` is an allow-list: a comma-separated
list of entry-point names to load (unset: load all; empty: load none). A
plugin that fails to import is logged and recorded in ``load_failures`` (it
then reports ``modelmon_collector_success 0``); it never stops modelmon.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from typing import Any

import pluggy

from modelmon import hookspecs

log = logging.getLogger(__name__)

ALLOWLIST_ENV = "MODELMON_PLUGINS"

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
    allowed = allowed_plugins()
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not take modelmon down
            log.exception("modelmon plugin %r (%s) failed to load", ep.name, ep.value)
            _load_failures[ep.name] = f"{type(exc).__name__}: {exc}"
    # A misspelled hook implementation fails loudly instead of never running.
    pm.check_pending()
    return pm


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
