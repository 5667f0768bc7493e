"""remote_write through a receiver's authentication, end to end: the real agent
(``modelmon edge run``) sends with its credentials and every sample it took is
queryable at the receiver with its original timestamp.

``local``: a real Prometheus requiring basic auth (its own web config), the
agent reading the password from a file. ``managed``: the same test against a
managed Prometheus (Amazon Managed Service for Prometheus with sigv4, Grafana
Cloud or Mimir with basic_auth/authorization, any receiver behind oauth2) when
``REMOTE_WRITE_TEST_URL``, ``REMOTE_WRITE_TEST_AUTH`` and
``REMOTE_WRITE_TEST_QUERY_URL`` are set (docs/cloud.md, "Testing against the
real service"); skipped otherwise. The unit tests (test_remote_write_auth.py)
cover refusals, rotation and token expiry against verifiers of each scheme.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.edge_harness import PROBE_METRIC, Agent
from support.remote_write_target import (
    ENV_AUTH,
    ENV_QUERY_URL,
    ENV_WRITE_URL,
    LocalPrometheus,
    ManagedTarget,
    TargetConfigError,
    describe,
    managed_target,
)

pytestmark = pytest.mark.integration

Target = LocalPrometheus | ManagedTarget


@pytest.fixture(params=["local", "managed"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    chosen: Target
    if request.param == "local":
        chosen = LocalPrometheus(tmp_path / "prometheus",
                                 request.getfixturevalue("prometheus_binary"))
    else:
        try:
            managed = managed_target(tmp_path / "managed")
        except TargetConfigError as exc:
            pytest.fail(str(exc), pytrace=False)  # half a configuration is a mistake, not a skip
        if managed is None:
            pytest.skip(f"no managed receiver: set {ENV_WRITE_URL}, {ENV_AUTH} and "
                        f"{ENV_QUERY_URL} to run this test against one (docs/cloud.md)")
        chosen = managed
    chosen.start()
    yield chosen
    chosen.stop()


def test_every_sample_arrives_with_its_timestamp_through_the_receivers_auth(
        target: Target, tmp_path: Path) -> None:
    querier = target.querier()
    # Without credentials the receiver refuses: the test below proves the agent's.
    refused = requests.post(target.write_url, data=b"", timeout=30,
                            headers={"Content-Type": "application/x-protobuf",
                                     "Content-Encoding": "snappy"})
    assert refused.status_code in (401, 403), (target.kind, refused.status_code, refused.text[:200])

    device = f"modelmon-test-{uuid.uuid4().hex[:10]}"  # a managed service keeps earlier runs
    agent = Agent(tmp_path / "agent", target.write_url, device=device, interval=0.5,
                  remote_write=target.remote_write)
    agent.start()
    try:
        deadline = time.monotonic() + 20
        while len(agent.spooled_times()) < 10:
            assert time.monotonic() < deadline, agent.logs()[-2000:]
            time.sleep(0.2)
        status = agent.wait_drained(timeout=60)
    finally:
        agent.stop()
    # The newest collection may have been in flight when the agent stopped.
    newest = max(agent.spooled_times())
    taken = {t for t in agent.spooled_times() if t < newest - 1500}
    assert len(taken) >= 5, sorted(agent.spooled_times())
    assert status["link_up"]
    assert status["spool"]["dropped_samples"] == {}
    assert "refused the credentials" not in agent.logs(), agent.logs()[-2000:]

    deadline = time.monotonic() + target.ingest_timeout
    while missing := taken - querier.sample_times(PROBE_METRIC, device):
        assert time.monotonic() < deadline, (
            f"{len(missing)} of {len(taken)} samples missing at the {target.kind} "
            f"({describe(target.remote_write)}), e.g. {sorted(missing)[:3]}")
        time.sleep(1.0)
    # The device's own KPIs arrive too, under its device label.
    assert querier.query(f'modelmon_system_memory_bytes{{device="{device}",state="total"}}')
