"""``modelmon plugins``: the plugins that are loaded, their hooks, failures."""

from __future__ import annotations

import argparse
import json

from modelmon import plugin_manager
from modelmon.hookspecs import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser("plugins", help="list loaded plugins and the hooks they implement")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = plugin_manager.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']:<24} {row['status']:<10} {', '.join(row['hooks'])}")
    return 0
