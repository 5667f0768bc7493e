"""``modelmon rules build``: write or check the Prometheus rules (and PrometheusRule)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from modelmon.generated_files import write_or_check

DEFAULT_OUT = Path("alert_rules")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("rules", help="Prometheus alert and recording rules from the catalog")
    group.set_defaults(_parser=group)
    actions = group.add_subparsers(dest="rules_command", metavar="ACTION")
    build = actions.add_parser(
        "build", help="write the rule files (or check that they are up to date)",
        description="Generate Prometheus recording and alerting rules, and the same groups as "
        "a Kubernetes PrometheusRule, from the KPI catalog and a thresholds config.",
    )
    build.add_argument("--config", type=Path, default=None,
                       help="YAML thresholds overriding the defaults, the same file as "
                       "'modelmon dashboards build --config' (see "
                       "alert_rules/config.defaults.yml)")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"output directory (default {DEFAULT_OUT})")
    build.add_argument("--prefix", default=None,
                       help="metric name prefix (default: the config's, else modelmon_)")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when a file in --out is stale")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.alerting import load_thresholds, render_all

    config = load_thresholds(args.config)
    if args.prefix:
        config = dataclasses.replace(config, prefix=args.prefix)
    command = "modelmon rules build" + "".join(
        f" {flag} {value}" for flag, value in (("--config", args.config), ("--out", args.out))
        if value is not None and value != DEFAULT_OUT
    )
    return write_or_check(render_all(config), args.out, args.check, command)
