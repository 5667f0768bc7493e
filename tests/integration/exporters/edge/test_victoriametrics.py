"""remote_write to a real VictoriaMetrics (one of the managed/scalable engines a
fleet moves to, docs/scaling.md): an outage with an agent restart in the middle,
then every sample the agent took is in VictoriaMetrics with its original
timestamp, exactly once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from support.edge_harness import PROBE_METRIC, Agent
from support.victoriametrics import VictoriaMetrics

pytestmark = pytest.mark.integration


def test_outage_backfills_victoriametrics_with_original_timestamps(tmp_path) -> None:
    vm = VictoriaMetrics(tmp_path / "vm")
    vm.start()
    agent = Agent(tmp_path / "agent", vm.write_url, device="edge-vm")
    try:
        agent.start()
        deadline = time.monotonic() + 20
        while not vm.sample_times(PROBE_METRIC, agent.device):
            assert time.monotonic() < deadline, "no sample reached VictoriaMetrics"
            time.sleep(0.2)

        vm.stop()
        outage_start = time.time()
        time.sleep(1.5)
        agent.stop()  # restart the agent during the outage
        agent.start()
        time.sleep(1.5)
        outage_end = time.time()
        vm.start()
        agent.wait_drained()
        drained_ms = time.time() * 1000
        time.sleep(1.0)  # what was in flight when the backlog emptied lands

        present = Counter(vm.sample_times(PROBE_METRIC, agent.device))
        taken = agent.spooled_times()
        due = {t for t in taken if t <= drained_ms - 500}
        during = {t for t in due if outage_start * 1000 <= t <= outage_end * 1000}
        assert len(during) >= 8, agent.logs()[-2000:]
        missing = due - set(present)
        assert not missing, f"{len(missing)} of {len(taken)} samples missing ({len(during)} in the outage)"
        twice = {t: n for t, n in present.items() if n > 1}
        assert not twice, f"samples stored more than once: {sorted(twice.items())[:5]}"
        assert set(present) <= taken, "samples at times the agent never took"
    finally:
        agent.stop()
        vm.stop()
