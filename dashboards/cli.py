"""``modelmon dashboards build``, ``modelmon kpis`` and ``modelmon report``.

Both commands need the dashboards: the first writes them, the second
cross-references them with the catalog and the rules in ``docs/KPIS.md``.
Core never imports ``modelmon.dashboards``, so they are registered here,
through the ``modelmon_register_commands`` hook.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from modelmon.dashboards.report.cli import register_report
from modelmon.generated_files import write_or_check
from modelmon.hookspecs import hookimpl
from modelmon.kpi import DEFAULT_PREFIX

DEFAULT_OUT = Path("dashboards/json")
DEFAULT_DOC = Path("docs/KPIS.md")


def register_dashboards(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("dashboards", help="Grafana dashboards generated from the KPI catalog")
    group.set_defaults(_parser=group)
    actions = group.add_subparsers(dest="dashboards_command", metavar="ACTION")
    build = actions.add_parser(
        "build", help="write the dashboard JSON (or check that it is up to date)",
        description="Generate the Grafana dashboards (grafanalib) from the KPI catalog, with "
        "the threshold lines of the thresholds config that the rules use.",
    )
    build.add_argument("--config", type=Path, default=None,
                       help="YAML thresholds overriding the defaults, the same file as "
                       "'modelmon rules build --config' (see alert_rules/config.defaults.yml)")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"output directory (default {DEFAULT_OUT})")
    build.add_argument("--prefix", default=None,
                       help=f"metric name prefix (default: the config's, else {DEFAULT_PREFIX})")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when a file in --out is stale")
    build.set_defaults(func=run_dashboards)


def run_dashboards(args: argparse.Namespace) -> int:
    from modelmon.dashboards import render_all
    from modelmon.thresholds import load_thresholds

    config = load_thresholds(args.config)
    if args.prefix:
        config = dataclasses.replace(config, prefix=args.prefix)
    command = "modelmon dashboards build" + "".join(
        f" {flag} {value}" for flag, value in (("--config", args.config), ("--out", args.out))
        if value is not None and value != DEFAULT_OUT
    )
    return write_or_check(render_all(config), args.out, args.check, command)


def register_kpis(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kpis", help="print the KPI catalog; write or check docs/KPIS.md")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--prefix", default=DEFAULT_PREFIX,
                   help=f"metric name prefix (default {DEFAULT_PREFIX})")
    p.add_argument("--write", action="store_true", help="write the Markdown to --doc")
    p.add_argument("--check", action="store_true", help="exit 1 when --doc is out of date")
    p.add_argument("--doc", type=Path, default=DEFAULT_DOC, help=f"default {DEFAULT_DOC}")
    p.set_defaults(func=run_kpis)


def run_kpis(args: argparse.Namespace) -> int:
    from modelmon.dashboards import kpi_docs

    if args.write or args.check:
        expected = kpi_docs.render_markdown()
        if args.write:
            args.doc.parent.mkdir(parents=True, exist_ok=True)
            args.doc.write_text(expected)
            print(f"wrote {args.doc}")
            return 0
        if not args.doc.exists():
            print(f"{args.doc} does not exist: run this from the repository root, or pass --doc",
                  file=sys.stderr)
            return 1
        if args.doc.read_text() != expected:
            print(
                f"{args.doc} is out of date with the KPI catalog, the dashboards or the rules; "
                "run 'modelmon kpis --write'",
                file=sys.stderr,
            )
            return 1
        print(f"{args.doc} is up to date")
        return 0
    if args.format == "table":
        sys.stdout.write(kpi_docs.render_table(prefix=args.prefix))
    elif args.format == "json":
        sys.stdout.write(kpi_docs.render_json(prefix=args.prefix))
    else:
        sys.stdout.write(kpi_docs.render_markdown(prefix=args.prefix))
    return 0


@hookimpl
def modelmon_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_dashboards(subparsers)
    register_kpis(subparsers)
    register_report(subparsers)
