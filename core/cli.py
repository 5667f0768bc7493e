"""The ``modelmon`` command.

Core's own subcommands (``plugins``, ``rules``) live in
``modelmon.commands``, one module each with ``register(subparsers)``; they are
discovered, so adding one never touches this file. The products add theirs
(``serve``, ``profile``, ``logs``, ``edge``, ``dashboards``, ``kpis``, ``demo``) through
the ``modelmon_register_commands`` hook, as built-in plugins: core never
imports them. Command handlers import heavy modules lazily, so
``modelmon --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import modelmon
from modelmon import commands
from modelmon.config import ConfigError
from modelmon.plugin_manager import get_plugin_manager


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon",
        description="Prometheus, Grafana, Alertmanager and Elasticsearch for AI models.",
    )
    parser.add_argument("--version", action="version", version=f"modelmon {modelmon.__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers of the commands, not commands
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    get_plugin_manager().hook.modelmon_register_commands(subparsers=sub)
    sub._choices_actions.sort(key=lambda action: action.dest)  # --help lists them sorted
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # A group command (e.g. ``modelmon dashboards``) without its subcommand.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"modelmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
