"""``modelmon edge run|status``: the edge agent (store-and-forward, remote_write backfill)."""

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


@hookimpl
def modelmon_register_commands(subparsers: SubParsers) -> None:
    register(subparsers)
