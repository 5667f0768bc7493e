"""Run the real agent (``modelmon edge run``) and a real Prometheus receiver.

Shared by the integration tests, ``tests/chaos/edge_sigkill.py`` and
``benchmarks/bench_edge.py``. The agent runs as a subprocess so it can be
restarted and SIGKILLed; at DEBUG level it logs each collection once its
samples are durable in the spool, which is the ground truth of "samples
taken" that the receiver must end up holding.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelmon.demo.processes import (
    PrometheusProcess,
    free_port,
    prometheus_config,
    start_prometheus,
    stop_process,
)
from modelmon.exporters.edge.status import read_status

RECEIVER_ARGS = ["--web.enable-remote-write-receiver"]
PROBE_METRIC = "modelmon_edge_backlog_samples"  # in every collection of every agent
_SPOOLED = re.compile(rb"spooled (\d+) samples collected at (\d+) ms")


def receiver_config(ooo_window: str = "2h") -> dict[str, Any]:
    return prometheus_config([], extra={"storage": {"tsdb": {"out_of_order_time_window": ooo_window}}})


@dataclass
class Receiver:
    """A Prometheus with the remote_write receiver that can be stopped and started
    again on the same port and data directory (an outage)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    config: dict[str, Any] = field(default_factory=receiver_config)
    prom: PrometheusProcess | None = None

    @property
    def write_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    def start(self) -> PrometheusProcess:
        self.prom = start_prometheus(self.config, workdir=self.workdir, port=self.port,
                                     extra_args=RECEIVER_ARGS)
        return self.prom

    def stop(self) -> None:
        if self.prom is not None:
            self.prom.stop()

    def sample_times(self, device: str, metric: str = PROBE_METRIC, window: str = "1h") -> set[int]:
        """Timestamps (ms) of every raw sample of ``metric`` for ``device``."""
        assert self.prom is not None
        result = self.prom.query(f'{metric}{{device="{device}"}}[{window}]')
        return {round(float(ts) * 1000) for series in result for ts, _ in series["values"]}


@dataclass
class Agent:
    """``modelmon edge run`` as a subprocess, with its DEBUG log."""

    workdir: Path
    write_url: str
    device: str = "edge-it"
    interval: float = 0.25
    collectors: tuple[str, ...] = ("system",)
    extra: dict[str, Any] = field(default_factory=dict)
    remote_write: dict[str, Any] = field(default_factory=dict)
    listen_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def config_path(self) -> Path:
        return self.workdir / "edge.yaml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {"edge": {
            "device_id": self.device,
            "interval": self.interval,
            "listen": f"127.0.0.1:{self.listen_port}",
            "collectors": list(self.collectors),
            "spool": {"path": str(self.state_dir), "max_age": "1d"},
            "remote_write": {"url": self.write_url, "min_backoff": "0.05s", "max_backoff": "0.3s",
                             "timeout": "5s", **self.remote_write},
            **self.extra,
        }}
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self, wait: bool = True) -> None:
        if not self.config_path.exists():
            self.write_config()
        self.runs += 1
        log = open(self.workdir / f"agent-{self.runs}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelmon", "--log-level", "DEBUG", "edge", "run",
             "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        if wait:
            self.wait_running()

    def wait_running(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = read_status(self.state_dir / "status.json")
            if status and status.get("pid") == self.proc.pid and status.get("running"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"agent not running after {timeout}s:\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)  # type: ignore[arg-type]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def logs(self) -> str:
        return "".join((self.workdir / f"agent-{i}.log").read_bytes().decode(errors="replace")
                       for i in range(1, self.runs + 1))

    def spooled_times(self) -> set[int]:
        """Collection times (ms) the agent reported durable, over all its runs."""
        times: set[int] = set()
        for i in range(1, self.runs + 1):
            times |= {int(m.group(2)) for m in _SPOOLED.finditer((self.workdir / f"agent-{i}.log").read_bytes())}
        return times

    def status(self) -> dict[str, Any]:
        return read_status(self.state_dir / "status.json") or {}

    def wait_drained(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the link is up and the agent has caught up: the backlog is at
        most one collection, or every record spooled when the wait began is settled
        (an agent collecting every 0.25 s with rules on spools two records a
        collection, so under load a backlog of one is a moment it may never show)."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = self.status()
        target = status.get("spool", {}).get("accepted", 0)
        while time.monotonic() < deadline:
            status = self.status()
            spool = status.get("spool", {})
            settled = spool.get("delivered", 0) + spool.get("dead_lettered", 0)
            if status.get("link_up") and (
                    status.get("backlog", {}).get("records", 99) <= 1 or settled >= target > 0):
                return status
            time.sleep(0.1)
        raise TimeoutError(f"backlog not drained after {timeout}s: {status}\n{self.logs()[-2000:]}")


def sigkill_rounds(receiver: Receiver, agent: Agent, iterations: int, rng: Any,
                   log: Any = None) -> dict[str, Any]:
    """Per round: SIGKILL the agent at a random moment of an outage, restart it,
    bring the receiver back and SIGKILL the agent again at a random moment of
    the backfill. Then let it drain and compare what it spooled with what
    Prometheus holds. The receiver must be running when this is called.
    """
    agent.remote_write.setdefault("backfill_rate_limit", 1500)  # a backfill worth interrupting
    agent.interval = min(agent.interval, 0.1)
    agent.write_config()
    agent.start()
    kills = 0
    for round_no in range(iterations):
        receiver.stop()
        time.sleep(rng.uniform(0.3, 1.2))
        agent.kill()
        kills += 1
        agent.start()
        time.sleep(rng.uniform(0.2, 0.8))
        receiver.start()
        time.sleep(rng.uniform(0.0, 0.6))
        agent.kill()
        kills += 1
        agent.start()  # raises if the agent cannot come back (a crash loop)
        if log is not None:
            log(f"round {round_no + 1}/{iterations}: backlog {agent.status().get('backlog')}")
    agent.wait_drained(timeout=120)
    taken = agent.spooled_times()
    present = receiver.sample_times(agent.device, window="6h")
    # The last collection may still be in flight; everything older must be there.
    newest = max(taken)
    missing = sorted(t for t in taken if t not in present and t < newest - 2000)
    spool = agent.status().get("spool", {})
    dropped = spool.get("dropped_samples", {})
    return {
        "iterations": iterations,
        "kills": kills,
        "collections": len(taken),
        "missing": len(missing),
        "missing_first": missing[:5],
        "corrupt": dropped.get("corrupt", 0),
        "dropped": dropped,
    }
