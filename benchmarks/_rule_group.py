"""Evaluating one generated recording-rule group on a real Prometheus over
backfilled data: the harness of bench_fleet_rules.py and
bench_fleet_accuracy_rules.py.

The data (an OpenMetrics file) becomes TSDB blocks with ``promtool tsdb
create-blocks-from openmetrics``; the Debian Prometheus loads the group alone
(evaluated every 5 s) and each evaluation's time is read from ``/api/v1/rules``.
Prometheus's CPU time per evaluation is also measured: it swings less with the
machine's load than wall time does.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from modelmon.alerting import rule_groups, thresholds_from_mapping
from modelmon.demo.processes import PrometheusProcess, prometheus_config, running_prometheus


@dataclass
class GroupTimes:
    group: list[float] = field(default_factory=list)  # seconds per evaluation
    rules: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_per_evaluation: float = 0.0  # Prometheus's CPU seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def evaluated_group(promtool: str, work: Path, group_name: str, evaluations: int,
                    seconds_per_evaluation: float) -> Iterator[tuple[PrometheusProcess, GroupTimes]]:
    """Backfill ``work/data.om``, run Prometheus with the generated group
    ``group_name`` (1 h window) until ``evaluations`` evaluations were timed (or
    ``seconds_per_evaluation`` each have passed), and yield it, still running."""
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(work / "data.om"),
                    str(work / "data")], check=True, capture_output=True)
    (work / "data.om").unlink()
    config = thresholds_from_mapping({"evaluation_interval": "5s",
                                      "quality": {"drift_windows": ["1h"]}})
    groups = [g for g in rule_groups(config) if g["name"] == group_name]
    (work / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    prom_config = prometheus_config([], scrape_interval="5s",
                                    extra={"rule_files": [str(work / "rules.yml")]})
    times = GroupTimes()
    with running_prometheus(prom_config, workdir=work) as prom:
        seen: set[str] = set()
        cpu_start: float | None = None
        deadline = time.monotonic() + seconds_per_evaluation * (evaluations + 4)
        while len(times.group) < evaluations and time.monotonic() < deadline:
            time.sleep(1)
            group = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"][0]
            if group["lastEvaluation"] in seen or group["evaluationTime"] == 0:
                continue
            seen.add(group["lastEvaluation"])
            if cpu_start is None:  # CPU from the end of the first evaluation seen
                cpu_start = cpu_seconds(prom.proc.pid)
                continue
            times.group.append(group["evaluationTime"])
            for rule in group["rules"]:
                key = rule["name"] + "".join(f"{{{v}}}" for v in rule.get("labels", {}).values())
                times.rules[key].append(rule["evaluationTime"])
        times.cpu_per_evaluation = ((cpu_seconds(prom.proc.pid) - (cpu_start or 0))
                                    / max(len(times.group), 1))
        yield prom, times
