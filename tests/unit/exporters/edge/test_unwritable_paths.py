"""Issue 12 finding 10 (spool paths): a spool directory that cannot be written
stops `modelmon edge run` and `modelmon serve` at start with one line that
names the setting and the fix, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.full_disk import small_disk


@pytest.fixture(params=["under_a_file", "read_only_filesystem"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if request.param == "under_a_file":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where a directory should be\n")
        yield blocker / "state"
        return
    with small_disk("1m") as disk:
        if isinstance(disk, str):
            pytest.skip(disk)
        ro = subprocess.run(["mount", "-o", "remount,ro", str(disk.path)], capture_output=True,
                            text=True, check=False)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.strip()}")
        yield disk.path / "state"


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_line_naming(proc: subprocess.CompletedProcess[str], field: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("modelmon:")]
    assert len(lines) == 1, proc.stderr
    assert field in lines[0] and "directory this user can write" in lines[0], lines[0]
    assert "serving" not in proc.stdout and "/metrics" not in proc.stdout


def test_edge_run_with_an_unwritable_spool_path(unwritable: Path, tmp_path: Path,
                                                modelmon_cmd: list[str]) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({"edge": {
        "device_id": "d", "listen": None, "collectors": [],
        "spool": {"path": str(unwritable)},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
    }}))
    proc = run([*modelmon_cmd, "edge", "run", "--config", str(config)])
    assert_one_line_naming(proc, "edge.spool.path")


def test_edge_run_with_an_unwritable_logs_spool_dir(unwritable: Path, tmp_path: Path,
                                                    modelmon_cmd: list[str]) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge": {"device_id": "d", "listen": None, "collectors": [],
                 "spool": {"path": str(tmp_path / "state")},
                 "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}},
        "logs": {"sink": "file", "spool_dir": str(unwritable),
                 "file": {"path": str(tmp_path / "events.jsonl")}},
    }))
    proc = run([*modelmon_cmd, "edge", "run", "--config", str(config)])
    assert_one_line_naming(proc, "logs.spool_dir")


def test_serve_with_an_unwritable_logs_spool_dir(unwritable: Path, tmp_path: Path,
                                                 modelmon_cmd: list[str]) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "logs": {"sink": "file", "spool_dir": str(unwritable),
                 "file": {"path": str(tmp_path / "events.jsonl")}},
    }))
    proc = run([*modelmon_cmd, "serve", "--config", str(config), "--listen", "127.0.0.1:0"])
    assert_one_line_naming(proc, "logs.spool_dir")
