"""``modelmon k8s build``: Kubernetes manifests to scrape and autoscale model servers."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from modelmon.generated_files import write_or_check

DEFAULT_OUT = Path("examples/kubernetes")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from modelmon.kubernetes import K8sSettings

    group = sub.add_parser("k8s", help="Kubernetes ServiceMonitor/PodMonitor and autoscaling "
                           "manifests (the PrometheusRule: 'modelmon rules build')")
    group.set_defaults(_parser=group)
    actions = group.add_subparsers(dest="k8s_command", metavar="ACTION")
    build = actions.add_parser(
        "build", help="write the manifests (or check that they are up to date)",
        description="Generate ServiceMonitors for the model servers and modelmon serve, a "
        "PodMonitor, a KEDA ScaledObject (in-flight requests and p95 latency) and an HPA "
        "with prometheus-adapter rules, from the KPI catalog.",
    )
    defaults = K8sSettings()
    for field in dataclasses.fields(K8sSettings):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        build.add_argument(flag, type=type(default), default=default,
                           help=f"default {default!r}")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"output directory (default {DEFAULT_OUT})")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when a file in --out is stale")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelmon.kubernetes import K8sSettings, render_all

    defaults = K8sSettings()
    settings = K8sSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(K8sSettings)})
    changed = [f for f in dataclasses.fields(K8sSettings)
               if getattr(settings, f.name) != getattr(defaults, f.name)]
    command = "modelmon k8s build" + "".join(
        f" --{f.name.replace('_', '-')} {getattr(settings, f.name)}" for f in changed
    ) + (f" --out {args.out}" if args.out != DEFAULT_OUT else "")
    return write_or_check(render_all(settings), args.out, args.check, command)
