"""Rules on the edge device: cost of one evaluation of the generated edge rules.

    .venv/bin/python benchmarks/bench_edge_rules.py [--series 500] [--evaluations 30]

1. The generated edge rule file (``alert_rules/modelmon.edge.rules.yml``, the
   group a device runs: recording and alerting rules) over ``--series``
   series of the metrics those rules read, 1 h of samples at 10 s: median
   time of one evaluation (goal <= 5 ms for 500 series).
2. For comparison, the whole cloud rule file (``alert_rules/modelmon.rules.yml``,
   every group, fleet drift and accuracy included: more than a device runs)
   over as many series of its own metrics.
3. ``sum by (model) (rate(x[1h]))`` over 500 series of 1 h at 10 s: the
   evaluator's share of a query-API answer (goal <= 50 ms; without the HTTP
   round trip and the JSON encoding).
4. Memory of the local window: RSS growth for the edge rules' samples.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import statistics
import time
from pathlib import Path

import promql_parser
import psutil

from modelmon.alerting.promql import kpi_of
from modelmon.exporters.edge.promql import MemoryStorage, compile_expr
from modelmon.exporters.edge.rules import RecordingRule, RuleGroupEvaluator, load_rule_files

ALERT_RULES = Path(__file__).resolve().parents[1] / "alert_rules"
EDGE_RULES = ALERT_RULES / "modelmon.edge.rules.yml"
CLOUD_RULES = ALERT_RULES / "modelmon.rules.yml"
STEP_MS = 10_000
SPAN_MS = 3_600_000
LE = ("0.005", "0.05", "0.5", "5", "+Inf")
# Values of the labels the rules select on, so that every selector finds series;
# any other catalog label gets two values.
LABEL_VALUES = {"outcome": ("success", "error"), "method": ("psi",), "le": LE,
                "reason": ("max_age",), "kind": ("missing_column",)}


def metric_names(exprs: list[str]) -> list[str]:
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    for expr in exprs:
        promql_parser.walk(promql_parser.parse(expr), visit)
    return sorted(names)


def label_variants(name: str) -> list[dict[str, str]]:
    """The extra label sets of one replica of ``name``: its catalog labels besides
    model, version and device (``le`` for buckets), two values each."""
    kpi = kpi_of(name)
    extra = [n for n in (kpi.labels if kpi else ()) if n not in ("model", "version", "device")]
    if name.endswith("_bucket"):
        extra.append("le")
    variants: list[dict[str, str]] = [{}]
    for label in extra:
        values = LABEL_VALUES.get(label, (f"{label}-a", f"{label}-b"))
        variants = [{**v, label: value} for v in variants for value in values]
    return variants


def fill(storage: MemoryStorage, names: list[str], series: int, end_ms: int) -> int:
    """``series`` series of one device (what its rules see), 1 h at 10 s: one of
    each device-level KPI (spool, link, collectors: their label variants), the rest
    spread over the model KPIs as models, versions and features."""
    def model_level(name: str) -> bool:
        kpi = kpi_of(name)
        return kpi is None or "model" in kpi.labels

    device_names = [n for n in names if not model_level(n)]
    model_names = [n for n in names if model_level(n)] or device_names
    made = samples = 0
    seen: set[tuple[tuple[str, str], ...]] = set()
    for i, name in enumerate([*device_names, *itertools.islice(itertools.cycle(model_names),
                                                              series)]):
        replica = i - len(device_names)
        base = {"__name__": name, "device": "dev-0", "job": "edge"}
        if model_level(name):
            base |= {"model": f"m{replica % 7}", "version": str(replica // 7)}
        for extra in label_variants(name)[: series - made]:
            labels = sorted({**base, **extra}.items())
            if tuple(labels) in seen:
                continue
            seen.add(tuple(labels))
            value = 0.0
            for t in range(end_ms - SPAN_MS, end_ms + 1, STEP_MS):
                value += (hash((name, replica, t)) % 100) / 10
                storage.append(labels, t, value)
                samples += 1
            made += 1
        if made >= series:
            break
    return samples


def time_rules(path: Path, series: int, evaluations: int, end: int) -> tuple[float, int, int, int]:
    """Median ms of one evaluation of every group of ``path`` over ``series`` series;
    with the rule and group counts and the samples filled."""
    groups = load_rule_files([str(path)])
    exprs = [r.query.text for g in groups for r in g.rules]
    recorded = {r.name for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    # Raw series only: what recording rules produce, they produce.
    names = [n for n in metric_names(exprs) if n not in recorded]
    storage = MemoryStorage()
    samples = fill(storage, names, series, end)
    evaluators = [RuleGroupEvaluator(g, storage) for g in groups]
    times = []
    for k in range(evaluations):
        t = end - SPAN_MS // 2 + k * STEP_MS  # inside the data: the rules see values
        start = time.perf_counter_ns()
        for evaluator in evaluators:
            evaluator.evaluate(t)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6, len(exprs), len(groups), samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--evaluations", type=int, default=30)
    args = parser.parse_args()

    logging.getLogger("modelmon.exporters.edge.rules").setLevel(logging.ERROR)
    end = int(time.time() * 1000) // STEP_MS * STEP_MS
    rss_before = psutil.Process().memory_info().rss
    rules_ms, edge_rules, _, samples = time_rules(EDGE_RULES, args.series, args.evaluations, end)
    rss_window = psutil.Process().memory_info().rss - rss_before
    cloud_ms, cloud_rules, cloud_groups, _ = time_rules(
        CLOUD_RULES, args.series, args.evaluations, end)

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
        (f"generated edge rules ({edge_rules} rules, 1 group) over {args.series} "
         "series, per evaluation", f"{rules_ms:.2f} ms", "<= 5 ms", rules_ms <= 5.0),
        (f"whole cloud rule file ({cloud_rules} rules, {cloud_groups} groups) over "
         f"{args.series} series, per evaluation (comparison)", f"{cloud_ms:.2f} ms", "-", None),
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
