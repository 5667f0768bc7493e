"""The same rule file on the device and in a real Prometheus gives the same
recording results and the same alert state sequence (``ALERTS``,
``ALERTS_FOR_STATE``) at every evaluation.

Prometheus evaluates on the wall clock, so the scenario's samples are
remote-written ahead of time with future timestamps: every evaluation sees
exactly the samples the evaluator sees. A recording rule ``eval_tick``
(``vector(1)``) records each evaluation's timestamp; the evaluator then runs
at those timestamps over the same samples.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from modelmon.demo.processes import find_binary, start_prometheus
from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import MemoryStorage, is_stale
from modelmon.exporters.edge.rules import RuleGroupEvaluator, load_rule_files
from support.edge_harness import RECEIVER_ARGS, receiver_config
from support.rules_differential import raw_samples, write

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: edge
    interval: 1s
    rules:
      - record: eval_tick
        expr: vector(1)
      - record: job:temp:max
        expr: max by (job) (temp)
        labels: {tier: edge}
      - alert: Hot
        expr: job:temp:max > 50
        for: 3s
        keep_firing_for: 2s
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.job }} is at {{ $value | humanize }}"
      - alert: BusyCamera
        expr: rate(reqs_total[4s]) > 3
        for: 2s
      - alert: NoMicrophone
        expr: absent(temp{job="mic"})
"""
SCENARIO_MS = 30_000
START_DELAY_MS = 4_000


def scenario(start: int) -> dict[LabelSet, list[tuple[int, float]]]:
    """temp{job=cam} hot 5-12 s (fires), 14-15.5 s (pending only), 18-27 s with a
    dip; temp{job=mic} from 8 s to 20 s; a counter whose rate crosses 3/s."""
    series: dict[LabelSet, list[tuple[int, float]]] = defaultdict(list)
    cam = (("__name__", "temp"), ("job", "cam"))
    mic = (("__name__", "temp"), ("job", "mic"))
    reqs = (("__name__", "reqs_total"), ("job", "cam"))
    total = 0.0
    for step in range(SCENARIO_MS // 500):
        at = step * 500
        t = start + at
        hot = 5_000 <= at < 12_000 or 14_000 <= at < 15_500 or (18_000 <= at < 27_000
                                                                 and not 21_000 <= at < 22_000)
        series[cam].append((t, 60.0 + at / 1000 if hot else 10.0))
        if 8_000 <= at < 20_000:
            series[mic].append((t, 55.0 if at < 16_000 else 20.0))
        total += 2.5 if 10_000 <= at < 19_000 else 0.5
        series[reqs].append((t, total))
    return series


def test_alert_states_and_recordings_match_prometheus(tmp_path: Path) -> None:
    if find_binary("prometheus") is None:
        pytest.fail("prometheus binary missing; run the README test command (bash tests/run.sh)")
    rules_path = tmp_path / "edge.rules.yml"
    rules_path.write_text(RULES)
    config = receiver_config("1d")
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(rules_path)]
    prom = start_prometheus(config, workdir=tmp_path / "prom", extra_args=RECEIVER_ARGS)
    try:
        # Prometheus emits no ALERTS in its first two evaluations (it restores the
        # `for` state first): the scenario starts once an alert shows.
        prom.wait_for('ALERTS{alertname="NoMicrophone"}', timeout=30)
        start = (int(time.time() * 1000) // 1000 + START_DELAY_MS // 1000) * 1000
        series = scenario(start)
        write(prom.url, series)
        end = start + SCENARIO_MS + 3_000
        while time.time() * 1000 < end + 1_500:
            time.sleep(0.25)
        ticks = sorted(t for t in raw_samples(prom.url, "eval_tick", end) if t <= end)
        theirs = {name: raw_samples(prom.url, name, end)
                  for name in ("ALERTS", "ALERTS_FOR_STATE", "job:temp:max")}
    finally:
        prom.stop()
    compared = [t for t in ticks if t >= start - 3_000]
    assert len(compared) >= SCENARIO_MS // 1000, ticks

    storage = MemoryStorage()
    for labels, samples in series.items():
        for t, v in samples:
            storage.append(labels, t, v)
    (group,) = load_rule_files([str(rules_path)])
    evaluator = RuleGroupEvaluator(group, storage)
    states_seen: set[str] = set()
    # Every evaluation from Prometheus's first, so alert state (activeAt) agrees.
    for t in ticks:
        result = evaluator.evaluate(t)
        if t < start - 3_000:
            continue
        mine: dict[str, set[tuple[LabelSet, float]]] = defaultdict(set)
        for labels, value in result.samples:
            name = dict(labels)["__name__"]
            if name in theirs and not is_stale(value):
                mine[name].add((labels, value))
        for name, by_time in theirs.items():
            assert mine[name] == by_time.get(t, set()), f"{name} at {t - start} ms"
        states_seen |= {dict(labels)["alertstate"] for labels, _ in mine["ALERTS"]}
        for alert in result.alerts:
            if dict(alert.labels)["alertname"] == "Hot" and alert.state != "inactive":
                job = dict(alert.labels)["job"]
                assert alert.annotations["summary"].startswith(f"{job} is at "), alert
    assert states_seen == {"pending", "firing"}
