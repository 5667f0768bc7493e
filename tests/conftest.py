"""Fixtures shared by all test areas: a fresh registry, real server launchers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon import plugin_manager
from modelmon.demo.processes import find_binary, free_port, wait_http_ok

REPO = Path(__file__).resolve().parent.parent
# --import-mode=importlib puts no test folder on sys.path: the shared test
# support package (tests/support) is imported as ``support``.
sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Default state (feedback stores, log spools) goes to a per-test folder,
    never to the user's ~/.local/state and never shared between tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of the test's own; no test reads the global one."""
    return CollectorRegistry()


@pytest.fixture
def prometheus_binary() -> str:
    binary = find_binary("prometheus")
    if binary is None:  # fail, never skip: a skipped integration test proves nothing
        pytest.fail("prometheus binary missing; run the README test command (bash tests/run.sh)")
    return binary


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reload plugins for this test (after it sets MODELMON_PLUGINS) and after it."""
    plugin_manager.reset()
    yield
    monkeypatch.delenv(plugin_manager.ALLOWLIST_ENV, raising=False)
    plugin_manager.reset()


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Start a command serving HTTP on a free port; stopped after the test.

    ``start_server(args_with_{port}, health_path="/healthz", scheme="http", env=None)``
    """
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], health_path: str = "/healthz", scheme: str = "http",
              env: dict[str, str] | None = None, ready: bool = True) -> ServerProcess:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        full_env = {**os.environ, **(env or {})}
        with open(log, "wb") as out:
            proc = subprocess.Popen([a.format(port=port) for a in args], stdout=out,
                                    stderr=subprocess.STDOUT, env=full_env)
        procs.append(proc)
        server = ServerProcess(proc, f"{scheme}://127.0.0.1:{port}", log)
        if ready:
            try:
                wait_http_ok(server.url + health_path, 60, proc) if scheme == "http" else None
            except Exception as exc:
                raise AssertionError(f"{exc}\n--- server output ---\n{server.output()}") from exc
        return server

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def modelmon_cmd() -> list[str]:
    """The modelmon CLI of the environment under test."""
    return [sys.executable, "-m", "modelmon"]
