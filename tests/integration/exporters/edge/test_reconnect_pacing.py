"""Reconnect pacing of the real agent (``modelmon edge run``) against a
remote_write receiver that goes down, throttles, and comes back.

Prometheus never answers 429, so the receiver here is the loopback one
(``support.remote_write_receiver``: the wire contract, snappy + protobuf),
scripted: 503 during the outage, then one 429 with ``Retry-After: 2``, then
204. What a fleet's receiver relies on, read from the arrival times:

* until the link answers 2xx, each request is a probe of one collection;
* no request comes before the ``Retry-After`` has passed;
* after the reconnect the backlog waits the hold the agent drew in
  ``[0, reconnect_jitter]`` (its log says how long); only samples collected
  after the reconnect arrive meanwhile (``live_first``);
* the backfill never exceeds ``backfill_rate_limit`` beyond one bucket;
* every collection the agent spooled arrives (but one taken as it stopped).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.edge_harness import PROBE_METRIC, Agent
from support.remote_write_receiver import Receiver, serve

pytestmark = pytest.mark.integration

RATE = 1500.0  # backfill_rate_limit, samples/s
PER_SEND = 250  # max_samples_per_send; the bucket holds max(PER_SEND, RATE)
JITTER = 3.0
RETRY_AFTER = 2.0
HOLD_METRIC = "modelmon_edge_backfill_hold_seconds"
_HOLD = re.compile(r"it waits ([0-9.]+) s \(reconnect_jitter")


@dataclass
class Script:
    """The receiver's state and a log of (arrival wall time, status, samples)."""

    state: str = "down"
    log: list[tuple[float, int, list[tuple[str, int]]]] = field(default_factory=list)
    # (collection time ms, value) of modelmon_edge_backfill_hold_seconds, as stored
    held: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def judge(self, series: list[Any]) -> tuple[int, str, dict[str, str]]:
        now = time.time()
        samples = [(dict(labels)["__name__"], t) for labels, values in series for _, t in values]
        with self.lock:
            if self.state == "down":
                answer: tuple[int, str, dict[str, str]] = (503, "down", {})
            elif self.state == "throttle":
                self.state = "up"
                answer = (429, "slow down", {"Retry-After": str(int(RETRY_AFTER))})
            else:
                answer = (204, "", {})
            self.log.append((now, answer[0], samples))
            if answer[0] == 204:
                self.held.update((t, v) for labels, values in series
                                 if dict(labels)["__name__"] == HOLD_METRIC for v, t in values)
        return answer


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[Receiver, Script]]:
    receiver, server, _ = serve()
    script = Script()
    receiver.judge = script.judge
    yield receiver, script
    server.shutdown()


def test_retry_after_hold_and_rate_limit_hold_on_the_wire(
        tmp_path: Path, scripted: tuple[Receiver, Script]) -> None:
    receiver, script = scripted
    agent = Agent(tmp_path / "agent", receiver.url, device="reconnect-it", interval=0.25,
                  remote_write={"order": "live_first", "reconnect_jitter": f"{JITTER}s",
                                "backfill_rate_limit": RATE, "max_samples_per_send": PER_SEND,
                                "min_backoff": "0.05s", "max_backoff": "3s"})
    agent.start()
    try:
        time.sleep(6.0)  # the outage: ~24 collections of ~70 series wait in the spool
        with script.lock:
            script.state = "throttle"
        agent.wait_drained(timeout=60)
        # wait_drained counts settled records, but live_first settles the newest
        # first: wait until the collections spooled so far all arrived.
        cutoff = max(agent.spooled_times())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {
                t for t in agent.spooled_times() if t <= cutoff} <= _arrived(script):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        agent.stop()
    log = list(script.log)

    # Retry-After: the request after the 429 waits at least that long.
    throttled = next(i for i, (_, status, _) in enumerate(log) if status == 429)
    assert log[throttled + 1][0] - log[throttled][0] >= RETRY_AFTER

    # The hold: the agent drew it in [0, jitter] and said so once.
    holds = [float(m.group(1)) for m in _HOLD.finditer(agent.logs())]
    assert len(holds) == 1 and 0.0 <= holds[0] <= JITTER, holds
    hold = holds[0]
    reconnect = next(i for i, (_, status, _) in enumerate(log) if status == 204)
    assert reconnect == throttled + 1
    t_ok, _, first = log[reconnect]
    edge = max(t for _, t in first)  # the newest collection at the reconnect
    # Until then every request was a probe of one collection.
    assert all(len({t for _, t in samples}) == 1 for _, _, samples in log[:reconnect + 1])
    during = [samples for t, _, samples in log[reconnect + 1:] if t < t_ok + hold]
    backlog_after = [t for t, _, samples in log[reconnect + 1:]
                     if any(ts < edge for _, ts in samples)]
    assert all(ts > edge for samples in during for _, ts in samples), \
        "a backlog sample was sent during the reconnect hold"
    assert backlog_after and min(backlog_after) >= t_ok + hold
    # The hold as a KPI: what the collections during it said, never more than the draw.
    said = [v for t, v in script.held.items() if t / 1000 >= t_ok]
    assert said and all(0.0 <= v <= hold + 0.001 for v in said), said  # the log rounds to ms
    if hold >= 0.75:  # three collections at least fell inside it
        assert max(said) > 0.0, said
    assert script.held[max(script.held)] == 0.0  # over by the end

    # The rate: between any two accepted requests, at most one bucket more
    # than RATE samples/s (plus a request's worth for loopback timing).
    sent = [(t, len(samples)) for t, status, samples in log[reconnect:] if status == 204]
    bucket = max(PER_SEND, RATE)
    total = sum(n for _, n in sent)
    assert total > 2 * bucket, f"only {total} samples: the rate limit was not exercised"
    for i in range(len(sent)):
        carried = 0
        for j in range(i + 1, len(sent)):
            carried += sent[j][1]
            assert carried <= bucket + RATE * (sent[j][0] - sent[i][0]) + PER_SEND, \
                f"{carried} samples in {sent[j][0] - sent[i][0]:.2f} s"

    # Nothing lost: every collection the agent spooled arrived.
    arrived = _arrived(script)
    spooled = agent.spooled_times()
    assert spooled and {t for t in spooled if t <= cutoff} <= arrived, \
        sorted(t for t in spooled - arrived if t <= cutoff)[:5]
    # After it, only what was collected in the last second, as the agent
    # stopped, may still be in the spool (kept for the next start).
    late = sorted(spooled - arrived)
    assert not late or late[0] >= max(spooled) - 1000, late[:5]


def _arrived(script: Script) -> set[int]:
    """Collection times (ms) of the probe metric in the accepted requests."""
    with script.lock:
        log = list(script.log)
    return {t for _, status, samples in log if status == 204
            for name, t in samples if name == PROBE_METRIC}
