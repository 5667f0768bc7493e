"""Start a real Prometheus (or Alertmanager) binary on a loopback port.

Used by ``modelmon demo``, the integration tests and the benchmarks. The
binaries come from the OS packages (Debian ``prometheus``,
``prometheus-alertmanager``); nothing is downloaded.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

INSTALL_HINT = (
    "install it from the OS packages: apt-get install prometheus prometheus-alertmanager"
)


# Ports this process handed out lately. Nothing holds a free port until its
# user binds it, so the kernel may offer the same one to the next caller: two
# services picked back to back would then collide (CI saw it once).
_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=4096)


def free_port(host: str = "127.0.0.1") -> int:
    """A free port on host that this process has not handed out lately."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.append(port)
            return port
    raise OSError(f"no free port on {host} that was not handed out already")


def find_binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)), None
    )


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} was ready")
        try:
            r = requests.get(url, timeout=1)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


@dataclass
class PrometheusProcess:
    """A running Prometheus server with a generated config."""

    port: int
    data_dir: Path
    config_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        r = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body.get('error', r.text)}")
        return list(body["data"]["result"])

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": promql, "start": start, "end": end,
                                          "step": step}
        r = requests.get(
            f"{self.url}/api/v1/query_range",
            params=params,
            timeout=30,
        )
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query_range {promql!r} failed: {body.get('error', r.text)}")
        return list(body["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        r = requests.get(f"{self.url}/api/v1/targets", timeout=10)
        return list(r.json()["data"]["activeTargets"])

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until ``promql`` returns a non-empty result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result or time.monotonic() > deadline:
                if not result:
                    raise TimeoutError(f"{promql!r} returned nothing within {timeout}s")
                return result
            time.sleep(0.25)

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    stop_processes([proc], timeout)


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM to all at once, then one shared deadline: servers shutting down
    gracefully (gunicorn drains its workers) do it in parallel, so stopping N
    of them takes the slowest one's time, not the sum."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prometheus_config(
    targets: Sequence[str],
    scrape_interval: str = "1s",
    job: str = "modelmon",
    extra: dict[str, Any] | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [],
    }
    if targets:
        config["scrape_configs"].append(
            {"job_name": job, "scheme": scheme, "static_configs": [{"targets": list(targets)}]}
        )
    if extra:
        config.update(extra)
    return config


def start_prometheus(
    config: dict[str, Any],
    workdir: Path | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    binary: str | None = None,
    ready_timeout: float = 30.0,
) -> PrometheusProcess:
    """Start Prometheus with ``config`` on 127.0.0.1 and wait until it is ready."""
    binary = binary or find_binary("prometheus")
    if binary is None:
        raise FileNotFoundError(f"the prometheus binary was not found; {INSTALL_HINT}")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="modelmon-prometheus-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    data_dir = workdir / "data"
    log_path = workdir / "prometheus.log"
    args = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *extra_args,
    ]
    if "--enable-feature=agent" in extra_args:
        args = [a for a in args if not a.startswith("--storage.tsdb.path")]
        args.append(f"--storage.agent.path={data_dir}")
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
    prom = PrometheusProcess(port, data_dir, config_path, proc, log_path, list(extra_args))
    try:
        wait_http_ok(f"{prom.url}/-/ready", ready_timeout, proc)
    except Exception as exc:
        prom.stop()
        raise RuntimeError(f"{exc}\n--- prometheus log ---\n{log_path.read_text()[-3000:]}") from exc
    return prom


@contextlib.contextmanager
def running_prometheus(config: dict[str, Any], **kwargs: Any) -> Iterator[PrometheusProcess]:
    prom = start_prometheus(config, **kwargs)
    try:
        yield prom
    finally:
        prom.stop()
