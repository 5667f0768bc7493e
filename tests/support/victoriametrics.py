"""A real VictoriaMetrics single-node server (Debian ``victoria-metrics``) as a
remote_write receiver that can be stopped and started again on the same port
and data directory (an outage)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import requests

from modelmon.demo.processes import find_binary, free_port, stop_process, wait_http_ok


@dataclass
class VictoriaMetrics:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    extra_args: list[str] = field(default_factory=list)  # more flags, e.g. -maxConcurrentInserts

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self) -> None:
        binary = find_binary("victoria-metrics")
        assert binary, "victoria-metrics missing: install Debian's victoria-metrics (see tests/run.sh)"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        log = open(self.workdir / f"vm-{self.runs}.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.workdir / 'data'}", "-retentionPeriod=10y",
             "-search.latencyOffset=0s", "-loggerLevel=ERROR", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_http_ok(f"{self.url}/health", timeout=30, proc=self.proc)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)  # type: ignore[arg-type]

    def sample_times(self, metric: str, device: str) -> list[int]:
        """Every raw sample's timestamp (ms) of ``metric`` for ``device``, duplicates kept."""
        requests.get(f"{self.url}/internal/force_flush", timeout=30).raise_for_status()
        answer = requests.get(f"{self.url}/api/v1/export", timeout=30, params={
            "match[]": f'{metric}{{device="{device}"}}', "start": "0"})
        answer.raise_for_status()
        times: list[int] = []
        for line in answer.text.splitlines():
            if line.strip():
                times.extend(json.loads(line)["timestamps"])
        return times
