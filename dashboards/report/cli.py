"""``modelmon report``: registered with the dashboards' commands (``modelmon.dashboards.cli``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmon.hookspecs import SubParsers


def register_report(sub: SubParsers) -> None:
    p = sub.add_parser(
        "report",
        help="write the dashboards' panels and the period's alerts as one HTML file",
        description="Query Prometheus for every panel of the modelmon Grafana dashboards over a "
        "period and write a self-contained HTML report (opens without network or Grafana). "
        "Needs plotly: pip install 'modelmon[report]'.",
    )
    p.add_argument("--prometheus", required=True, metavar="URL",
                   help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="HTML file to write")
    p.add_argument("--since", default="6h",
                   help="length of the period, ending now (or at --end): 30m, 6h, 2d (default 6h)")
    p.add_argument("--end", type=float, default=None, metavar="UNIX_SECONDS",
                   help="end of the period (default: now)")
    p.add_argument("--model", help="only this model (the dashboards' model variable)")
    p.add_argument("--device", help="only this edge device (the dashboards' device variable)")
    p.add_argument("--alertmanager", metavar="URL",
                   help="also list the alerts active in this Alertmanager (edge alerts included)")
    p.add_argument("--config", type=Path, default=None,
                   help="thresholds YAML, as for 'modelmon dashboards build' (threshold lines)")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from modelmon.config import ConfigError
    from modelmon.thresholds import load_thresholds
    from modelmon.units import parse_duration

    try:
        since = parse_duration(args.since, "--since")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from modelmon.dashboards.report import ReportError, write_report

    try:
        data = write_report(args.prometheus, args.out, since, args.model, args.device,
                            end=args.end, alertmanager_url=args.alertmanager,
                            config=load_thresholds(args.config))
    except (ReportError, ImportError) as exc:  # ImportError: the message names the extra
        print(f"modelmon report: {exc}", file=sys.stderr)
        return 2
    empty = len(data.empty_panels())
    firing = len({a.name for a in data.alerts if a.state == "firing"})
    print(f"wrote {args.out}: {data.panel_count() - empty} of {data.panel_count()} panels with "
          f"data, {firing} alerts fired in the period")
    return 0
