"""Rules on the edge device: cost of one evaluation of the generated rules.

    .venv/bin/python benchmarks/bench_edge_rules.py [--series 500] [--evaluations 30]

1. The generated rule file (``alert_rules/modelmon.rules.yml``, every group:
   recording and alerting rules; there is no separate edge group yet, so this
   is more than a device would run) over ``--series`` series of the metrics
   those rules read, 1 h of samples at 10 s: median time of one evaluation of
   all groups (goal <= 5 ms for 500 series).
2. ``sum by (model) (rate(x[1h]))`` over 500 series of 1 h at 10 s: the
   evaluator's share of a query-API answer (goal <= 50 ms; without the HTTP
   round trip and the JSON encoding).
3. Memory of the local window: RSS growth for those samples.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import promql_parser
import psutil

from modelmon.exporters.edge.promql import MemoryStorage, compile_expr
from modelmon.exporters.edge.rules import RecordingRule, RuleGroupEvaluator, load_rule_files

RULES = Path(__file__).resolve().parents[1] / "alert_rules" / "modelmon.rules.yml"
STEP_MS = 10_000
SPAN_MS = 3_600_000
LE = ("0.005", "0.05", "0.5", "5", "+Inf")


def metric_names(exprs: list[str]) -> list[str]:
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    for expr in exprs:
        promql_parser.walk(promql_parser.parse(expr), visit)
    return sorted(names)


def fill(storage: MemoryStorage, names: list[str], series: int, end_ms: int) -> int:
    """``series`` series spread over ``names`` (buckets get ``le``), 1 h at 10 s."""
    made = samples = 0
    i = 0
    while made < series:
        name = names[i % len(names)]
        replica = i // len(names)
        base = {"__name__": name, "model": f"m{replica % 7}", "version": "1",
                "device": f"dev-{replica}", "job": "edge"}
        label_sets = [{**base, "le": le} for le in LE] if name.endswith("_bucket") else [base]
        for labels in label_sets[: series - made]:
            value = 0.0
            for t in range(end_ms - SPAN_MS, end_ms + 1, STEP_MS):
                value += (hash((name, replica, t)) % 100) / 10
                storage.append(labels.items(), t, value)
                samples += 1
            made += 1
        i += 1
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--evaluations", type=int, default=30)
    args = parser.parse_args()

    logging.getLogger("modelmon.exporters.edge.rules").setLevel(logging.ERROR)
    groups = load_rule_files([str(RULES)])
    exprs = [r.query.text for g in groups for r in g.rules]
    recorded = {r.name for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    # Raw series only: what recording rules produce, they produce.
    names = [n for n in metric_names(exprs) if n not in recorded]
    end = int(time.time() * 1000) // STEP_MS * STEP_MS
    rss_before = psutil.Process().memory_info().rss
    storage = MemoryStorage()
    samples = fill(storage, names, args.series, end)
    rss_window = psutil.Process().memory_info().rss - rss_before
    evaluators = [RuleGroupEvaluator(g, storage) for g in groups]
    times = []
    for k in range(args.evaluations):
        t = end - SPAN_MS // 2 + k * STEP_MS  # inside the data: the rules see values
        start = time.perf_counter_ns()
        for evaluator in evaluators:
            evaluator.evaluate(t)
        times.append(time.perf_counter_ns() - start)
    rules_ms = statistics.median(times) / 1e6

    rate_storage = MemoryStorage()
    for s in range(args.series):
        for t in range(end - SPAN_MS, end + 1, STEP_MS):
            rate_storage.append([("__name__", "x"), ("model", f"m{s % 20}"), ("i", str(s))], t,
                                float(t // 1000 + s))
    query = compile_expr("sum by (model) (rate(x[1h]))")
    rate_times = []
    for _ in range(10):
        start = time.perf_counter_ns()
        query.evaluate(rate_storage, end)
        rate_times.append(time.perf_counter_ns() - start)
    rate_ms = statistics.median(rate_times) / 1e6

    rows = [
        (f"generated rules ({len(exprs)} rules, {len(groups)} groups) over {args.series} "
         "series, per evaluation", f"{rules_ms:.2f} ms", "<= 5 ms", rules_ms <= 5.0),
        (f"sum by (model) (rate(x[1h])) over {args.series} series (evaluator only)",
         f"{rate_ms:.2f} ms", "<= 50 ms", rate_ms <= 50.0),
        (f"local window: {samples} samples ({args.series} series, 1 h at 10 s), RSS growth",
         f"{rss_window / 2**20:.1f} MiB", "-", None),
    ]
    header = ("benchmark", "ours", "goal", "result")
    cells = [header] + [(n, o, g, "-" if ok is None else "PASS" if ok else "FAIL")
                        for n, o, g, ok in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for c in [cells[0], tuple("-" * w for w in widths), *cells[1:]]:
        print("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)).rstrip())
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
