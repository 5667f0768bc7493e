"""``modelmon demo``: a real model, live traffic, the exporter and Prometheus, locally."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelmon.hookspecs import SubParsers, hookimpl


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "demo",
        help="run a live demo: scikit-learn model server, traffic, exporter, Prometheus",
        description="Start a local model-monitoring stack with synthetic traffic; Ctrl-C stops it.",
    )
    p.add_argument("--app-port", type=int, default=8000, help="model server port (0: any free)")
    p.add_argument("--exporter-port", type=int, default=9110, help="modelmon serve port (0: any)")
    p.add_argument("--prometheus-port", type=int, default=9090, help="Prometheus port (0: any)")
    p.add_argument("--rps", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    p.add_argument("--workdir", type=Path, help="where logs and Prometheus data go (default: temp)")
    p.add_argument("--traffic-only", action="store_true",
                   help="only send traffic to running servers (--app-url, --exporter-url)")
    p.add_argument("--app-url", default="http://127.0.0.1:8000", help="with --traffic-only")
    p.add_argument("--exporter-url", default="http://127.0.0.1:9110", help="with --traffic-only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.demo.run import DemoPorts, run_demo, run_traffic

    if args.traffic_only:
        return run_traffic(args.app_url, args.exporter_url, args.rps, args.duration)
    ports = DemoPorts.resolve(args.app_port, args.exporter_port, args.prometheus_port)
    return run_demo(ports, args.duration, args.rps, not args.no_prometheus, args.workdir)


@hookimpl
def modelmon_register_commands(subparsers: SubParsers) -> None:
    register(subparsers)
