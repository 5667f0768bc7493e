"""``modelmon demo``: cloud and edge model monitoring, live, on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelmon.hookspecs import SubParsers, hookimpl


def register(sub: SubParsers) -> None:
    from modelmon.demo.ports import PORT_OPTIONS
    from modelmon.demo.scenarios import SCENARIOS

    p = sub.add_parser(
        "demo",
        help="run the live demo: model servers, edge devices, Prometheus, Alertmanager",
        description=(
            "Start a local model-monitoring stack (a scikit-learn model server, modelmon serve, "
            "three edge devices whose links drop and return, Prometheus with the generated "
            "rules, Alertmanager, a webhook receiver) with traffic and scenarios; Ctrl-C stops "
            "it. --scenario NAME --check runs one scenario headless and exits 0 once its "
            "alerts fired and resolved in Alertmanager, 1 with what was missing."
        ),
    )
    for name, option, default in PORT_OPTIONS:
        what = name.replace("_", " ")
        many = {"edge_proxy": " (and the next five: remote_write and alert links, two per "
                              "device)",
                "edge_listen": " (and the next two: one per device)"}.get(name, "")
        p.add_argument(option, type=int, default=default, dest=f"port_{name}", metavar="PORT",
                       help=f"{what} port{many}; 0: any free (default {default})")
    p.add_argument("--rps", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--workdir", type=Path, help="where logs and Prometheus data go (default: temp)")
    p.add_argument("--scenario", choices=sorted(SCENARIOS),
                   help="play one scenario instead of the live loop of all of them")
    p.add_argument("--check", action="store_true",
                   help="with --scenario: headless; exit 0 once its expected alerts fired and "
                        "resolved in Alertmanager and its ECS events are in the log sink")
    p.add_argument("--es-url", help="ship the pipeline events to this Elasticsearch")
    p.add_argument("--logstash-url", help="ship the pipeline events to this Logstash http input")
    p.add_argument("--thresholds", type=Path, default=None,
                   help="rule config of the generated rules (default: the demo's, "
                        "modelmon/demo/thresholds.yml, windows of seconds)")
    p.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    p.add_argument("--report", type=Path, help="write the HTML report here when the demo stops")
    p.add_argument("--no-report", action="store_true", help="write no report when it stops")
    p.add_argument("--screenshot", type=Path,
                   help="save the live view as it last looked to this SVG when the demo stops")
    p.add_argument("--no-prometheus", action="store_true",
                   help="no longer supported: the demo's alerts need Prometheus")
    p.add_argument("--traffic-only", action="store_true",
                   help="only send traffic to running servers (--app-url, --exporter-url)")
    p.add_argument("--webhook-only", action="store_true",
                   help="only run the webhook receiver on --webhook-port, printing each "
                        "Alertmanager notification (the compose stack's webhook service)")
    p.add_argument("--webhook-listen", default="127.0.0.1",
                   help="with --webhook-only: the address to listen on")
    p.add_argument("--app-url", default="http://127.0.0.1:8000", help="with --traffic-only")
    p.add_argument("--exporter-url", default="http://127.0.0.1:9110", help="with --traffic-only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.demo.run import DemoOptions, run_demo, run_traffic
    from modelmon.demo.stack import DEMO_THRESHOLDS

    if args.traffic_only:
        return run_traffic(args.app_url, args.exporter_url, args.rps, args.duration)
    if args.webhook_only:
        from modelmon.demo.run import run_webhook

        return run_webhook(args.webhook_listen, args.port_webhook, args.duration)
    if args.check and not args.scenario:
        print("modelmon demo: --check needs --scenario NAME (one of the --scenario choices)")
        return 2
    if args.no_prometheus:
        print("modelmon demo: --no-prometheus is no longer supported: the alerts, the live view "
              "and the checks read Prometheus; install it (apt-get install prometheus) and run "
              "without --no-prometheus")
        return 2
    ports = {key.removeprefix("port_"): value for key, value in vars(args).items()
             if key.startswith("port_")}
    return run_demo(DemoOptions(
        ports=ports, rps=args.rps, duration=args.duration, workdir=args.workdir,
        scenario=args.scenario, check=args.check, es_url=args.es_url,
        logstash_url=args.logstash_url, thresholds=args.thresholds or DEMO_THRESHOLDS,
        plain=args.plain, report=args.report, no_report=args.no_report,
        screenshot=args.screenshot,
    ))


@hookimpl
def modelmon_register_commands(subparsers: SubParsers) -> None:
    register(subparsers)
