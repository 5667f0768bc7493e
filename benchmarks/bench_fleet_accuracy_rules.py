"""Evaluation time of the generated fleet accuracy recording rules on a real Prometheus.

    .venv/bin/python benchmarks/bench_fleet_accuracy_rules.py [--models 10 --classes 20 --replicas 3]

Backfills one hour of feedback counters (``feedback_total`` by outcome, the
per-class outcomes of ``classes`` + ``__other__``, the absolute-error histogram's
``_sum``/``_count``) of every replica, 15 s samples, with ``promtool tsdb
create-blocks-from openmetrics``; starts the Debian Prometheus on it with the
accuracy recording group (window 1h, evaluated every 5 s) and reads the
group's and each rule's evaluation time from ``/api/v1/rules``. No goal: the
figures size the group next to the fleet drift one (bench_fleet_rules.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rule_group import evaluated_group
from _table import format_ns, print_table

from modelmon.demo.processes import find_binary

STEP = 15


def _openmetrics(path: Path, models: int, classes: int, replicas: int, now: int) -> int:
    """Write the backfill; return the number of counter series."""
    times = list(range(now - 3600 - 4 * STEP, now + 1, STEP))
    names = [f"c{i}" for i in range(classes)] + ["__other__"]
    series = 0
    with path.open("w") as out:
        def family(name: str, rows: list[tuple[str, int]]) -> None:
            nonlocal series
            out.write(f"# TYPE {name} counter\n")
            for labels, rate in rows:
                series += 1
                for i, t in enumerate(times):
                    out.write(f"{name}_total{{{labels}}} {i * rate} {t}\n")

        for m in range(models):
            for r in range(replicas):
                base = f'model="m{m}",version="1",instance="r{r}"'
                family("modelmon_feedback", [
                    (f'{base},outcome="{o}"', rate)
                    for o, rate in (("correct", 8), ("incorrect", 2), ("observed", 0))])
                family("modelmon_feedback_class_labels", [
                    (f'{base},class="{c}",outcome="{o}"', rate) for c in names
                    for o, rate in (("true_positive", 3), ("false_positive", 1),
                                    ("false_negative", 1))])
        out.write("# TYPE modelmon_feedback_absolute_error histogram\n")
        for m in range(models):
            for r in range(replicas):
                base = f'model="m{m}",version="1",instance="r{r}"'
                series += 2
                for i, t in enumerate(times):
                    out.write(f"modelmon_feedback_absolute_error_bucket{{{base},le=\"+Inf\"}} "
                              f"{i * 5} {t}\n")
                    out.write(f"modelmon_feedback_absolute_error_sum{{{base}}} {i * 7.5} {t}\n")
                    out.write(f"modelmon_feedback_absolute_error_count{{{base}}} {i * 5} {t}\n")
        out.write("# EOF\n")
    return series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=5)
    args = parser.parse_args()
    promtool = find_binary("promtool")
    if promtool is None:
        print("promtool missing: apt-get install prometheus", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="modelmon-fleet-accuracy-"))
    now = int(time.time()) // STEP * STEP
    series = _openmetrics(work / "data.om", args.models, args.classes, args.replicas, now)
    with evaluated_group(promtool, work, "modelmon.accuracy.recording", args.evaluations,
                         seconds_per_evaluation=30) as (prom, times):
        precision = prom.query("count(modelmon:feedback_precision:1h)")
        accuracy = prom.query("avg(modelmon:feedback_accuracy:1h)")
    group_times, rule_times, cpu = times.group, times.rules, times.cpu_per_evaluation
    median = statistics.median(group_times)
    rows = [(
        f"accuracy rules, {args.models} models x {args.replicas} replicas x "
        f"{args.classes + 1} classes ({series} counter series), 1h window, "
        f"median of {len(group_times)} evaluations",
        format_ns(median * 1e9), "-", 0.0, "(info)", None,
    )]
    rows.append(("  Prometheus CPU time per evaluation (steadier than wall time on a busy machine)",
                 format_ns(cpu * 1e9), "-", 0.0, "(info)", None))
    for name, seconds in sorted(rule_times.items(), key=lambda kv: -statistics.median(kv[1]))[:4]:
        rows.append((f"  {name}", format_ns(statistics.median(seconds) * 1e9), "-", 0.0, "(info)",
                     None))
    print_table(rows, "fleet accuracy recording rules (real Prometheus, this machine)")
    print(f"  classes with a fleet precision: {precision[0]['value'][1] if precision else 0}; "
          f"fleet accuracy {accuracy[0]['value'][1] if accuracy else '-'} (backfilled 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
