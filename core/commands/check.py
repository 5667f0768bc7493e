"""``modelmon check``: a Nagios / Icinga plugin (``modelmon.nagios``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="Nagios/Icinga plugin: a model's burn rate, drift, accuracy or an edge "
        "device's link, from Prometheus (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    p.add_argument("kpi", choices=("burn-rate", "drift", "accuracy", "edge-link"))
    p.add_argument("--prometheus", "-H", default="http://127.0.0.1:9090",
                   help="Prometheus base URL (default http://127.0.0.1:9090)")
    p.add_argument("--model", "-m", help="model name (burn-rate, drift, accuracy)")
    p.add_argument("--version", help="model version (drift, accuracy; default: any)")
    p.add_argument("--device", "-d", help="edge device id (edge-link)")
    p.add_argument("--warning", "-w", help="Nagios range; default: the generated alerts'")
    p.add_argument("--critical", "-c", help="Nagios range; default: the generated alerts'")
    p.add_argument("--method", default="psi", help="drift method (psi, js, ...; default psi)")
    p.add_argument("--window", default="1h", help="burn-rate window of the recording rules "
                   "(5m, 30m, 1h, 2h, 6h, 1d, 3d; default 1h)")
    p.add_argument("--thresholds", help="the thresholds file of your rules: the error "
                   "budget and the default ranges follow it")
    p.add_argument("--timeout", "-t", type=float, default=10.0, help="seconds (default 10)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelmon.nagios import UNKNOWN, Check, Range, default_ranges, run
    from modelmon.thresholds import load_thresholds

    try:
        if args.kpi == "edge-link" and not args.device:
            raise ValueError("--device: required for edge-link (the edge.device_id)")
        if args.kpi != "edge-link" and not args.model:
            raise ValueError(f"--model: required for {args.kpi}")
        thresholds = load_thresholds(args.thresholds)
        default_warning, default_critical = default_ranges(args.kpi, thresholds)
        warning = Range.parse(args.warning or default_warning, "--warning")
        critical = Range.parse(args.critical or default_critical, "--critical")
        target = thresholds.slo.availability_target
        check = Check(args.kpi, args.prometheus, model=args.model, version=args.version,
                      device=args.device, method=args.method, window=args.window,
                      availability_target=target, timeout=args.timeout)
    except Exception as exc:  # the plugin API: any failure is UNKNOWN with one line
        print(f"MODELMON {args.kpi.upper()} UNKNOWN - {exc}")
        return UNKNOWN
    status, line = run(check, warning, critical)
    print(line)
    sys.stdout.flush()
    return status
