"""``modelmon zabbix template``: write or check the Zabbix 6.0 template (``modelmon.zabbix``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from modelmon.generated_files import write_or_check

DEFAULT_OUT = Path("zabbix")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("zabbix", help="a Zabbix 6.0 template of the KPI catalog")
    group.set_defaults(_parser=group)
    actions = group.add_subparsers(dest="zabbix_command", metavar="ACTION")
    template = actions.add_parser(
        "template", help="write the template (or check that it is up to date)",
        description="Generate a Zabbix 6.0 template (YAML export: an HTTP agent item on "
        "/metrics, discovery rules per label set, items, triggers from the thresholds "
        "config, value maps, graphs) to import in Zabbix under Data collection > Templates.",
    )
    template.add_argument("--config", type=Path, default=None,
                          help="YAML thresholds overriding the defaults, the same file as "
                          "'modelmon rules build --config'")
    template.add_argument("--out", type=Path, default=DEFAULT_OUT,
                          help=f"output directory (default {DEFAULT_OUT})")
    template.add_argument("--prefix", default=None,
                          help="metric name prefix (default: the config's, else modelmon_)")
    template.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 when the file in --out is stale")
    template.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.thresholds import load_thresholds
    from modelmon.zabbix import FILE_NAME, render_template

    config = load_thresholds(args.config)
    if args.prefix:
        config = dataclasses.replace(config, prefix=args.prefix)
    command = "modelmon zabbix template" + "".join(
        f" {flag} {value}" for flag, value in (("--config", args.config), ("--out", args.out))
        if value is not None and value != DEFAULT_OUT
    )
    return write_or_check({FILE_NAME: render_template(config)}, args.out, args.check, command)
