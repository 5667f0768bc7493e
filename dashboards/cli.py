"""``modelmon dashboards build``: write or check the Grafana dashboard JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelmon.generated_files import write_or_check
from modelmon.hookspecs import hookimpl
from modelmon.kpi import DEFAULT_PREFIX

DEFAULT_OUT = Path("dashboards/json")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("dashboards", help="Grafana dashboards generated from the KPI catalog")
    group.set_defaults(_parser=group)
    actions = group.add_subparsers(dest="dashboards_command", metavar="ACTION")
    build = actions.add_parser(
        "build", help="write the dashboard JSON (or check that it is up to date)",
        description="Generate the Grafana dashboards (grafanalib) from the KPI catalog.",
    )
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"output directory (default {DEFAULT_OUT})")
    build.add_argument("--prefix", default=DEFAULT_PREFIX,
                       help=f"metric name prefix (default {DEFAULT_PREFIX})")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when a file in --out is stale")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.dashboards import render_all

    command = "modelmon dashboards build" + (
        f" --out {args.out}" if args.out != DEFAULT_OUT else ""
    )
    return write_or_check(render_all(args.prefix), args.out, args.check, command)


@hookimpl
def modelmon_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register(subparsers)
