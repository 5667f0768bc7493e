"""``modelmon edge run|status|query|bundle``: the edge agent (store-and-forward, remote_write
backfill, rules and queries over its own recent samples, configuration bundles)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmon.hookspecs import SubParsers, hookimpl


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "edge", help="edge agent: device and model KPIs, durable spool, remote_write backfill",
        description="Run the edge agent or show its state. See docs/edge.md.",
    )
    p.set_defaults(func=None, _parser=p)
    edge = p.add_subparsers(dest="edge_command", metavar="SUBCOMMAND")

    run = edge.add_parser("run", help="collect every interval, spool, remote_write (blocks)",
                          description="Run the agent until SIGTERM or Ctrl-C.")
    run.add_argument("--config", required=True, type=Path, help="YAML file with an edge: section")
    run.set_defaults(func=_run)

    status = edge.add_parser(
        "status", help="link state, backlog, last send and drops; a progress bar while draining",
        description="Print the agent's state from <spool.path>/status.json. While a backlog "
        "drains (on a terminal, or with --watch) follow it with a progress bar.",
    )
    status.add_argument("--config", required=True, type=Path, help="the agent's config file")
    status.add_argument("--watch", action="store_true",
                        help="follow a draining backlog with a progress bar even when not on a tty")
    status.add_argument("--no-watch", action="store_true", help="print once and exit")
    status.add_argument("--json", action="store_true", help="print the raw status as JSON")
    status.add_argument("--timeout", type=float, default=None,
                        help="stop following after this many seconds")
    status.set_defaults(func=_status)

    query = edge.add_parser(
        "query", help="evaluate PromQL over the running agent's own recent samples",
        description="Ask the running agent, on its listen address, for an instant query "
        "(Prometheus's /api/v1/query). Needs rules: or query_window: in the edge config.",
    )
    query.add_argument("expr", help="a PromQL expression of the edge subset (docs/edge.md)")
    query.add_argument("--config", required=True, type=Path, help="the agent's config file")
    query.add_argument("--time", default=None,
                       help="evaluation time, unix seconds or RFC 3339; default now")
    query.add_argument("--json", action="store_true", help="print the API's JSON answer")
    query.set_defaults(func=_query)

    from .bundles.cli import register as register_bundle

    register_bundle(edge)


def _run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.edge import EdgeAgent, load_edge_config

    config = load_edge_config(args.config)
    # A fresh registry: the CLI process has no models, and the interpreter's
    # process_*/python_* series are not device KPIs.
    EdgeAgent(config, CollectorRegistry()).run_forever()
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from modelmon.exporters.edge import load_edge_config
    from modelmon.exporters.edge.status import agent_running, follow_drain, read_status, render

    config = load_edge_config(args.config)
    status = read_status(config.status_file)
    if status is None:
        print(f"no agent state at {config.status_file}: the agent has not run with this config "
              "yet (start it with 'modelmon edge run --config ...')", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    sys.stdout.write(render(status))
    draining = (agent_running(status) and status.get("link_up")
                and status.get("backlog", {}).get("samples", 0)
                > 2 * config.remote_write.max_samples_per_send)
    follow = not args.no_watch and (args.watch or (draining and sys.stdout.isatty()))
    if follow:
        follow_drain(config.status_file, sys.stdout, args.timeout,
                     done_below=config.remote_write.max_samples_per_send)
    return 0


def _query(args: argparse.Namespace) -> int:
    import json

    import requests

    from modelmon.exporters.edge import load_edge_config

    config = load_edge_config(args.config)
    if config.listen is None or not (config.rules or config.query_window):
        print(f"{args.config}: the agent serves queries on its listen address when the edge "
              "config has rules: or query_window: (and listen: is not null)", file=sys.stderr)
        return 2
    host, port = config.listen
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/api/v1/query"
    params = {"query": args.expr, **({"time": args.time} if args.time else {})}
    try:
        body = requests.get(url, params=params, timeout=30).json()
    except requests.RequestException as exc:
        print(f"cannot reach the agent at {url} ({exc}); is 'modelmon edge run --config "
              f"{args.config}' running?", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    elif body.get("status") != "success":
        print(f"{body.get('errorType')}: {body.get('error')}", file=sys.stderr)
    elif body["data"]["resultType"] == "scalar":
        print(body["data"]["result"][1])
    else:
        for sample in body["data"]["result"]:
            labels = sample["metric"]
            name = labels.pop("__name__", "")
            inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            print(f"{name}{{{inner}}} {sample['value'][1]}")
    return 0 if body.get("status") == "success" else 1


@hookimpl
def modelmon_register_commands(subparsers: SubParsers) -> None:
    register(subparsers)
