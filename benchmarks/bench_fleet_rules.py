"""Evaluation time of the generated fleet drift recording rules on a real Prometheus.

    .venv/bin/python benchmarks/bench_fleet_rules.py [--models 10 --features 50 --bins 10]

Backfills one hour of bin counters and reference shares (one replica, 15 s
samples) with ``promtool tsdb create-blocks-from openmetrics``, starts the
Debian Prometheus on it with the drift recording group (window 1h, evaluated
every 5 s) and reads each rule's evaluation time from ``/api/v1/rules``.
Issue 14's goal: <= 100 ms per evaluation for 10 models x 50 features x 10 bins.

The same evaluations are also given as Prometheus's CPU time per evaluation
(``/proc/<pid>/stat``): on a machine shared with other work the wall time
swings with the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rule_group import evaluated_group
from _table import format_ns, print_table

from modelmon.demo.processes import find_binary

STEP = 15


def _openmetrics(path: Path, models: int, features: int, bins: int, now: int) -> None:
    start = now - 3600 - 4 * STEP
    times = range(start, now + 1, STEP)
    with path.open("w") as out:
        for family, kind in (("modelmon_feature_cumulative_bin_values", "counter"),
                             ("modelmon_feature_reference_cumulative_share", "gauge")):
            out.write(f"# TYPE {family} {kind}\n")
            for m in range(models):
                for f in range(features):
                    for b in range(bins):
                        labels = (f'model="m{m}",version="1",feature="f{f}",bin="{b}",'
                                  f'previous_bin="{"none" if b == 0 else b - 1}",instance="r1"')
                        if kind == "counter":
                            for i, t in enumerate(times):
                                out.write(f"{family}_total{{{labels}}} {i * 2 * (b + 1)} {t}\n")
                        else:
                            for t in times:
                                out.write(f'{family}{{{labels},kind="numeric"}} '
                                          f"{(b + 1) / bins} {t}\n")
        out.write("# EOF\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=8)
    args = parser.parse_args()
    promtool = find_binary("promtool")
    if promtool is None:
        print("promtool missing: apt-get install prometheus", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="modelmon-fleet-rules-"))
    now = int(time.time()) // STEP * STEP
    _openmetrics(work / "data.om", args.models, args.features, args.bins, now)
    with evaluated_group(promtool, work, "modelmon.drift.recording", args.evaluations,
                         seconds_per_evaluation=5) as (prom, times):
        load = os.getloadavg()[0]
        count = prom.query("count(modelmon:feature_drift:1h)")
        # The same counts from increase() alone, for comparison (the query API's own timing).
        by = "model, version, feature, bin, previous_bin"
        plain: list[float] = []
        for _ in range(5):
            body = requests.get(f"{prom.url}/api/v1/query", timeout=60, params={
                "query": f"sum by ({by}) (increase(modelmon_feature_cumulative_bin_values_total[1h]))",
                "stats": "all"}).json()
            plain.append(body["data"]["stats"]["timings"]["evalTotalTime"])
    series = args.models * args.features * args.bins
    group_times, rule_times = times.group, times.rules
    cpu_per_evaluation = times.cpu_per_evaluation
    median = statistics.median(group_times)
    rows = [(
        f"drift rules, {args.models} models x {args.features} features x {args.bins} bins "
        f"({series} counters), 1h window, median of {len(group_times)} evaluations",
        format_ns(median * 1e9), "-", median / 0.1, "<= 100 ms", median <= 0.1,
    )]
    rows.append((f"  Prometheus CPU time per evaluation (load average {load:.1f} at the end)",
                 format_ns(cpu_per_evaluation * 1e9), "-", cpu_per_evaluation / 0.1, "(info)", None))
    for name, seconds in sorted(rule_times.items(), key=lambda kv: -statistics.median(kv[1]))[:5]:
        rows.append((f"  {name}", format_ns(statistics.median(seconds) * 1e9), "-", 0.0, "(info)",
                     None))
    rows.append(("  the counts with increase() alone, for comparison",
                 format_ns(statistics.median(plain) * 1e9), "-", 0.0, "(info)", None))
    ok = print_table(rows, "fleet drift recording rules (real Prometheus, this machine)")
    print(f"  fleet drift series recorded: {count[0]['value'][1] if count else 0}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
