"""The generated edge rule file runs unchanged on the device and gives what a real
Prometheus gives: built by ``render_all`` (what ``modelmon rules build --config``
writes) with fast thresholds, loaded through the agent's rule loader, and
evaluated by the device's evaluator at every one of Prometheus's evaluations over
the same remote-written samples of two devices: the same recording results,
``ALERTS`` and ``ALERTS_FOR_STATE``, every alert of the file pending and firing
at least once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from modelmon.alerting import render_all, thresholds_from_mapping
from modelmon.alerting.render import EDGE_RULES_FILE
from modelmon.demo.processes import find_binary, start_prometheus
from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import MemoryStorage, is_stale
from modelmon.exporters.edge.rules import AlertingRule, RecordingRule, RuleGroupEvaluator
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner
from support.edge_harness import RECEIVER_ARGS, receiver_config
from support.rules_differential import Series, raw_samples, write

pytestmark = pytest.mark.integration

# The same thresholds file a user passes to `modelmon rules build --config`, with
# windows of seconds so that every alert fires and resolves within the scenario.
FAST = thresholds_from_mapping({
    "evaluation_interval": "1s",
    "slo": {"page_windows": [["8s", "2s", 14.4]], "ticket_windows": [["16s", "4s", 1]],
            "page_for": "2s", "ticket_for": "3s"},
    "traffic": {"collector_failing_for": "3s"},
    "quality": {"violation_window": "4s", "violation_for": "2s", "drift_for": "2s"},
    "edge": {"offline_after": "5s", "backlog_growing_window": "4s", "backlog_growing_for": "2s",
             "backlog_limit_for": "2s", "drops_window": "5s", "config_stale_after": "8s",
             "model_skew_for": "3s", "system_for": "2s"},
})
SCENARIO_MS = 30_000
START_DELAY_MS = 5_000
STEP_MS = 500
P = "modelmon_"


def scenario(start: int) -> Series:
    """Two devices, d1 and d2, running model m: d1 fails calls 6-16 s, sends
    inputs with missing values 4-14 s, drifts 8-20 s, loses its link at 10 s
    (backlog growing 10-22 s), is asked for version 2 from 12 s and runs low on
    memory 14-26 s; d2 is slow 12-22 s, has its system collector failing 10-25 s,
    its disk nearly full 5-20 s, its spool near its limit 15-25 s, drops samples
    at 22 s, has a schema violation at 20 s and never confirms its bundle."""
    series: dict[LabelSet, list[tuple[int, float]]] = defaultdict(list)
    counters: dict[LabelSet, float] = defaultdict(float)

    def key(name: str, device: str, **labels: str) -> LabelSet:
        return tuple(sorted({"__name__": P + name, "device": device, **labels}.items()))

    def counter(name: str, device: str, t: int, inc: float, **labels: str) -> None:
        k = key(name, device, **labels)
        counters[k] += inc
        series[k].append((t, counters[k]))

    def gauge(name: str, device: str, t: int, value: float, **labels: str) -> None:
        series[key(name, device, **labels)].append((t, value))

    mv = {"model": "m", "version": "1"}
    for step in range(SCENARIO_MS // STEP_MS):
        at = step * STEP_MS
        t = start + at
        for d in ("d1", "d2"):
            failing = d == "d1" and 6_000 <= at < 16_000
            slow = d == "d2" and 12_000 <= at < 22_000
            counter("inference_requests_total", d, t, 10, outcome="success", **mv)
            counter("inference_requests_total", d, t, 3 if failing else 0, outcome="error", **mv)
            counter("inference_duration_seconds_bucket", d, t, 4 if slow else 10, le="0.5", **mv)
            counter("inference_duration_seconds_bucket", d, t, 10, le="+Inf", **mv)
            counter("inference_duration_seconds_count", d, t, 10, **mv)
            counter("input_rows_total", d, t, 10, **mv)
            missing = d == "d1" and 4_000 <= at < 14_000
            counter("feature_missing_total", d, t, 3 if missing else 0, feature="f", **mv)
            for name in ("feature_out_of_range_total", "feature_type_errors_total",
                         "feature_unseen_category_total"):
                counter(name, d, t, 0, feature="f", **mv)
            counter("schema_violations_total", d, t, 1 if d == "d2" and at == 20_000 else 0,
                    kind="missing_column", **mv)
            drifting = d == "d1" and 8_000 <= at < 20_000
            gauge("feature_drift", d, t, 0.4 if drifting or d == "d2" else 0.1, feature="f",
                  method="psi", **mv)
            gauge("prediction_drift", d, t, 0.3 if drifting else 0.05, method="psi", **mv)
            gauge("drift_window_rows", d, t, 600 if d == "d1" else 100, **mv)
            gauge("collector_success", d, t,
                  0 if d == "d2" and 10_000 <= at < 25_000 else 1, collector="system")
            offline = d == "d1" and at >= 10_000
            gauge("edge_last_send_success_timestamp_seconds", d, t,
                  (start + 10_000) / 1000 if offline else t / 1000)
            growing = d == "d1" and 10_000 <= at < 22_000
            gauge("edge_backlog_samples", d, t, 50.0 * (at - 10_000) / STEP_MS if growing
                  else 100.0 if d == "d2" else 0.0)
            near = d == "d2" and 15_000 <= at < 25_000
            gauge("edge_backlog_bytes", d, t, 900 if near else 100)
            gauge("edge_spool_max_bytes", d, t, 1000)
            gauge("edge_backlog_oldest_sample_age_seconds", d, t, 10)
            gauge("edge_spool_max_age_seconds", d, t, 100)
            counter("edge_samples_dropped_total", d, t, 5 if d == "d2" and at == 22_000 else 0,
                    reason="max_age")
            gauge("edge_bundle_last_success_timestamp_seconds", d, t,
                  start / 1000 if d == "d2" else t / 1000)
            gauge("model_info", d, t, 1, framework="sk", framework_version="1", task="c", **mv)
            full = d == "d2" and 5_000 <= at < 20_000
            gauge("system_filesystem_bytes", d, t, 1000, mountpoint="/", state="total")
            gauge("system_filesystem_bytes", d, t, 50 if full else 500, mountpoint="/",
                  state="free")
            low = d == "d1" and 14_000 <= at < 26_000
            gauge("system_memory_bytes", d, t, 1000, state="total")
            gauge("system_memory_bytes", d, t, 50 if low else 600, state="available")
            desired = "2" if d == "d1" and at >= 12_000 else "1"
            gauge("edge_model_desired_info", d, t, 1, model="m", version=desired)
    return series


def _rules_evaluated(url: str) -> bool:
    groups = requests.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return bool(groups) and not groups[0]["lastEvaluation"].startswith("0001")


def test_generated_edge_rules_match_prometheus(tmp_path: Path) -> None:
    if find_binary("prometheus") is None:
        pytest.fail("prometheus binary missing; run the README test command (bash tests/run.sh)")
    rules_path = tmp_path / EDGE_RULES_FILE
    rules_path.write_text(render_all(FAST)[EDGE_RULES_FILE])
    # The agent's own path for `edge.rules`: a refused rule would raise here.
    runner = EdgeRuleRunner.from_files([str(rules_path)], None, 1.0, {})
    (loaded,) = runner.evaluators
    group = loaded.group
    recorded = sorted({r.name for r in group.rules if isinstance(r, RecordingRule)})
    alert_names = {r.name for r in group.rules if isinstance(r, AlertingRule)}

    config = receiver_config("1d")
    config["rule_files"] = [str(rules_path)]
    prom = start_prometheus(config, workdir=tmp_path / "prom", extra_args=RECEIVER_ARGS)
    try:
        deadline = time.monotonic() + 30
        while not _rules_evaluated(prom.url):  # past the `for` state restore
            assert time.monotonic() < deadline, "Prometheus never evaluated the edge group"
            time.sleep(0.25)
        time.sleep(2)
        start = (int(time.time() * 1000) // 1000 + START_DELAY_MS // 1000) * 1000
        series = scenario(start)
        write(prom.url, series)
        end = start + SCENARIO_MS
        while time.time() * 1000 < end + 1_500:
            time.sleep(0.25)
        theirs = {name: raw_samples(prom.url, name, end)
                  for name in ("ALERTS", "ALERTS_FOR_STATE", *recorded)}
    finally:
        prom.stop()
    # Prometheus's evaluation times: its errors ratio has a value at every one
    # while requests come in (a missed tick is missed on both sides).
    ticks = sorted(t for t in theirs[recorded[0]] if start <= t <= end)
    assert len(ticks) >= SCENARIO_MS // 1000 - 3, ticks

    storage = MemoryStorage()
    for labels, samples in series.items():
        for t, v in samples:
            storage.append(labels, t, v)
    evaluator = RuleGroupEvaluator(group, storage)
    states: dict[str, set[str]] = defaultdict(set)
    compared: dict[str, int] = defaultdict(int)
    for t in ticks:
        result = evaluator.evaluate(t)
        assert result.errors == {}, result.errors
        mine: dict[str, set[tuple[LabelSet, float]]] = defaultdict(set)
        for labels, value in result.samples:
            name = dict(labels)["__name__"]
            if not is_stale(value):
                mine[name].add((labels, value))
        for name, by_time in theirs.items():
            assert mine[name] == by_time.get(t, set()), f"{name} at {t - start} ms"
            compared[name] += len(mine[name])
        for labels, _ in mine["ALERTS"]:
            states[dict(labels)["alertname"]].add(dict(labels)["alertstate"])
    assert all(compared[name] >= len(ticks) for name in recorded), compared
    assert compared["ALERTS"] >= 100, compared
    # Every alert of the file fired (those with a `for` after pending first).
    assert {name for name, seen in states.items() if "firing" in seen} == alert_names, states
    with_for = {r.name for r in group.rules if isinstance(r, AlertingRule) and r.for_ms}
    assert {name for name, seen in states.items() if "pending" in seen} == with_for, states
