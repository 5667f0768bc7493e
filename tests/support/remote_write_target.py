"""A remote_write receiver that demands credentials, and a way to query it with them.

Two kinds, one interface (``write_url``, ``remote_write`` = the agent's
``edge.remote_write`` keys with the credentials, ``query``):

* ``LocalPrometheus``: a real Prometheus whose own web config
  (``--web.config.file``, exporter-toolkit) requires basic auth on every
  endpoint, the remote_write receiver and the query API included;
* ``ManagedTarget``: the service named by the environment (docs/cloud.md,
  "Testing against the real service"): Amazon Managed Service for Prometheus
  (sigv4), Grafana Cloud or Mimir (basic_auth, authorization, headers), any
  receiver behind an OAuth2 token endpoint.

Queries are authenticated by the agent's own schemes (``RequestAuth``) built
from the same config keys, so a SigV4-signed query works like a signed write.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import requests
import yaml

from modelmon.demo.processes import free_port, stop_process
from modelmon.exporters.edge import edge_config_from_mapping
from modelmon.exporters.edge.auth import AuthRequest, RequestAuth
from modelmon.exporters.edge.config import RemoteWriteConfig

ENV_WRITE_URL = "REMOTE_WRITE_TEST_URL"
ENV_AUTH = "REMOTE_WRITE_TEST_AUTH"
ENV_QUERY_URL = "REMOTE_WRITE_TEST_QUERY_URL"
ENV_QUERY_AUTH = "REMOTE_WRITE_TEST_QUERY_AUTH"


class TargetConfigError(ValueError):
    """The environment names a service but not all of what the test needs."""


def _mapping(name: str, text: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise TargetConfigError(f"{name}: not JSON or YAML ({exc})") from None
    if not isinstance(value, dict):
        raise TargetConfigError(f"{name}: expected a mapping of edge.remote_write keys such as "
                                '{"sigv4": {"region": "eu-west-1"}}, got ' + repr(value)[:80])
    return value


def remote_write_settings(url: str, keys: dict[str, Any], base_dir: Path) -> RemoteWriteConfig:
    """The agent's own parsing of ``edge.remote_write`` (so a bad key fails as it would there)."""
    config = edge_config_from_mapping({"edge": {
        "device_id": "query", "listen": None, "collectors": [],
        "spool": {"path": str(base_dir / "unused-spool")},
        "remote_write": {"url": url, **keys}}}, base_dir)
    return config.remote_write


@dataclass
class _Querier:
    """The Prometheus HTTP API at ``base`` (``.../api/v1/query`` is appended)."""

    base: str
    auth: RequestAuth
    headers: dict[str, str]

    def get(self, path: str, params: dict[str, str]) -> requests.Response:
        url = f"{self.base.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
        request = AuthRequest("GET", url, dict(self.headers), b"")
        self.auth.authorize(request)
        return requests.get(url, headers=request.headers, timeout=30)

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = self.get("/api/v1/query", {"query": promql})
        if r.status_code != 200:
            raise RuntimeError(f"query {promql!r}: HTTP {r.status_code} {r.text[:300]}")
        return list(r.json()["data"]["result"])

    def sample_times(self, metric: str, device: str, window: str = "30m") -> set[int]:
        """Timestamps (ms) of every raw sample of ``metric`` for ``device``."""
        result = self.query(f'{metric}{{device="{device}"}}[{window}]')
        return {round(float(ts) * 1000) for series in result for ts, _ in series["values"]}


@dataclass
class LocalPrometheus:
    """A real Prometheus receiver behind its own basic auth (bcrypt, web config)."""

    workdir: Path
    binary: str
    username: str = "edge-7"
    password: str = "remote-write-s3cret"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    kind: str = "local Prometheus with basic auth"
    ingest_timeout: float = 20.0

    @property
    def write_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    @property
    def remote_write(self) -> dict[str, Any]:
        password_file = self.workdir / "password"
        return {"basic_auth": {"username": self.username, "password_file": str(password_file)}}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "password").write_text(self.password + "\n")
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(4)).decode()
        web = self.workdir / "web.yml"
        web.write_text(yaml.safe_dump({"basic_auth_users": {self.username: hashed}}))
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "15s"},
            "storage": {"tsdb": {"out_of_order_time_window": "2h"}}}))
        log = open(self.workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--web.config.file={web}",
             "--web.enable-remote-write-receiver"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1,
                                auth=(self.username, self.password)).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("Prometheus not ready:\n"
                           + (self.workdir / "prometheus.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def querier(self) -> _Querier:
        settings = remote_write_settings(self.write_url, self.remote_write, self.workdir)
        return _Querier(f"http://127.0.0.1:{self.port}", settings.auth, {})


@dataclass
class ManagedTarget:
    """The managed receiver the environment names (see the module docstring)."""

    write_url: str
    remote_write: dict[str, Any]
    query_url: str
    query_keys: dict[str, Any]
    workdir: Path
    kind: str = "managed receiver from REMOTE_WRITE_TEST_URL"
    ingest_timeout: float = 120.0  # managed services index asynchronously

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        pass

    def querier(self) -> _Querier:
        settings = remote_write_settings(self.query_url, self.query_keys, self.workdir)
        return _Querier(self.query_url, settings.auth, dict(settings.headers))


def managed_target(workdir: Path) -> ManagedTarget | None:
    """The managed receiver from the environment, None when ``REMOTE_WRITE_TEST_URL`` is unset."""
    url = os.environ.get(ENV_WRITE_URL)
    if not url:
        return None
    query_url = os.environ.get(ENV_QUERY_URL)
    if not query_url:
        raise TargetConfigError(
            f"{ENV_WRITE_URL} is set but {ENV_QUERY_URL} is not: set it to the service's "
            "Prometheus query API base (the URL before /api/v1/query)")
    keys = _mapping(ENV_AUTH, os.environ.get(ENV_AUTH) or "{}")
    query_text = os.environ.get(ENV_QUERY_AUTH)
    query_keys = keys if query_text is None else _mapping(ENV_QUERY_AUTH, query_text)
    return ManagedTarget(url, keys, query_url, query_keys, workdir)


def describe(keys: dict[str, Any]) -> str:
    """The scheme a mapping of remote_write keys uses, for messages (never a secret)."""
    schemes = [k for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file",
                           "oauth2", "sigv4", "auth") if k in keys]
    return ", ".join(schemes) or "no credentials"

