"""Fixtures for the edge agent's integration tests (real Prometheus, real agent process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.edge_harness import Agent, Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver(tmp_path: Path, prometheus_binary: str) -> Iterator[Receiver]:
    # prometheus_binary fails (never skips) when Prometheus is missing.
    rec = Receiver(tmp_path / "prometheus")
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture
def agent(tmp_path: Path, receiver: Receiver) -> Iterator[Agent]:
    a = Agent(tmp_path / "agent", receiver.write_url)
    yield a
    a.stop()
