"""Edge agent benchmarks, side by side with the Prometheus agent, in one run.

    .venv/bin/python benchmarks/bench_edge.py [--outage 30] [--interval 1]

1. Outage with a restart in the middle: modelmon's agent and the Prometheus
   agent (same Debian binary, ``--enable-feature=agent``, scraping modelmon's
   local /metrics every interval and remote-writing to the same receiver) go
   through the same receiver outage; both are restarted halfway through it.
   Reported: samples of the outage window each delivers to the receiver.
2. RSS of ``modelmon edge run`` with the system collector (goal <= 40 MB).
3. Spool append through the agent's path (collect 500 series, encode, append)
   (goal >= 100,000 samples/s).
4. Backfill of a 1-hour outage, 500 series at 10 s (180,000 samples), into the
   real Prometheus with the default rate limit (goal <= 15 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry, Gauge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # support.*

from modelmon.demo.processes import prometheus_config, start_prometheus
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.stream import DeviceView, SampleStream
from modelmon.spool import Spool
from support.edge_harness import PROBE_METRIC, Agent, Receiver

ROWS: list[tuple[str, str, str, str, str]] = []


def row(name: str, ours: str, baseline: str, goal: str, ok: bool | None) -> None:
    ROWS.append((name, ours, baseline, goal, "-" if ok is None else "PASS" if ok else "FAIL"))


def bench_outage(work: Path, outage: float, interval: float) -> None:
    receiver = Receiver(work / "receiver")
    receiver.start()
    agent = Agent(work / "agent", receiver.write_url, device="bench-edge", interval=interval)
    agent.start()
    prom_agent_cfg = prometheus_config(
        [f"127.0.0.1:{agent.listen_port}"], scrape_interval=f"{int(interval * 1000)}ms", job="promagent",
        # A 1 s batch deadline (default 5 s) so the Prometheus agent is not slowed by batching.
        extra={"remote_write": [{"url": receiver.write_url,
                                 "queue_config": {"batch_send_deadline": "1s"}}]},
    )
    prom_agent_dir = work / "prom-agent"
    prom_agent = start_prometheus(prom_agent_cfg, workdir=prom_agent_dir,
                                  extra_args=["--enable-feature=agent"])
    try:
        warm_start = time.time()
        time.sleep(max(20.0, 20 * interval))  # both agents deliver normally
        receiver.stop()
        start = time.time()
        time.sleep(outage / 2)
        # Each agent is restarted in turn; each has its own (short) downtime.
        agent.stop()
        agent.start()
        prom_agent.stop()  # graceful stop waits up to 10 s for the dead receiver, then SIGKILL
        prom_agent = start_prometheus(prom_agent_cfg, workdir=prom_agent_dir, port=prom_agent.port,
                                      extra_args=["--enable-feature=agent"])
        time.sleep(max(0.0, start + outage - time.time()))
        end = time.time()
        receiver.start()
        agent.wait_drained(timeout=120)
        time.sleep(20)  # the Prometheus agent's queue backs off up to 5 s; give it time
        assert receiver.prom is not None
        rng = f"[{int(time.time() - start) + 60}s]"

        def count(selector: str, lo: float, hi: float) -> int:
            result = receiver.prom.query(f"{PROBE_METRIC}{{{selector}}}{rng}")  # type: ignore[union-attr]
            return sum(1 for s in result for ts, _ in s["values"] if lo <= float(ts) <= hi)

        ours_before = count('device="bench-edge",job=""', warm_start + 12, start - 1)
        theirs_before = count('device="bench-edge",job="promagent"', warm_start + 12, start - 1)
        row("before the outage (sanity: both deliver)", str(ours_before), str(theirs_before),
            "> 0 each", ours_before > 0 and theirs_before > 0)
        ours = count('device="bench-edge",job=""', start, end)
        theirs = count('device="bench-edge",job="promagent"', start, end)
        taken = {t for t in agent.spooled_times() if start * 1000 <= t <= end * 1000}
        present = receiver.sample_times("bench-edge", window=rng.strip("[]"))
        expected = outage / interval
        row(f"outage {outage:.0f}s + restart: samples delivered (of ~{expected:.0f})",
            f"{ours} ({ours / expected:.0%})", f"{theirs} ({theirs / expected:.0%})",
            "modelmon 100% of taken", not (taken - present))
        row("  of the samples modelmon took during the outage", f"{len(taken & present)}/{len(taken)}",
            "-", "all", not (taken - present))
        proc = psutil.Process(agent.proc.pid)  # type: ignore[union-attr]
        rss = max(proc.memory_info().rss for _ in range(5) if time.sleep(0.2) is None) / 2**20
        prom_rss = psutil.Process(prom_agent.proc.pid).memory_info().rss / 2**20
        row("agent RSS with the system collector", f"{rss:.1f} MB", f"{prom_rss:.1f} MB", "<= 40 MB",
            rss <= 40)
    finally:
        agent.stop()
        prom_agent.stop()
        receiver.stop()


def _registry(series: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauge = Gauge("bench_series", "Benchmark series.", ["series", "model"], registry=registry)
    for i in range(series):
        gauge.labels(str(i), "m").set(i)
    return registry


def bench_append(work: Path) -> None:
    stream = SampleStream(DeviceView([_registry(500)], {"device": "bench"}), 2000)
    spool = Spool(work / "append-spool", max_bytes=2**30, max_age=None)
    try:
        samples, start, now = 0, time.perf_counter(), time.time()
        while time.perf_counter() - start < 3.0:
            records = stream.collect(now)
            spool.append_many([p for p, _ in records], created=now,
                              items=[n for _, n in records])
            samples += sum(n for _, n in records)
            now += 10
        rate = samples / (time.perf_counter() - start)
        payloads = [p for p, _ in stream.collect(now)]
        raw, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            spool.append_many(payloads, created=now, items=[500])
            raw += 500
        raw_rate = raw / (time.perf_counter() - start)
    finally:
        spool.close()
    row("spool append, collect+encode+append (samples/s)", f"{rate:,.0f}", "-", ">= 100,000",
        rate >= 100_000)
    row("spool append, pre-encoded records (samples/s)", f"{raw_rate:,.0f}", "-", "-", None)


def bench_backfill(work: Path) -> None:
    receiver = Receiver(work / "backfill-receiver")
    receiver.start()
    config = edge_config_from_mapping({"edge": {
        "device_id": "bench-backfill", "listen": None, "collectors": [],
        "spool": {"path": str(work / "backfill-agent")},
        "remote_write": {"url": receiver.write_url},  # defaults: 2000/send, 20,000 samples/s
    }})
    agent = EdgeAgent(config, _registry(500))
    try:
        t0 = time.time() - 3600
        for i in range(360):
            agent.collect_once(now=t0 + 10 * i)
        agent.spool.flush_buffer()
        backlog = agent.spool.stats().pending_items
        start = time.perf_counter()
        agent.start(collect=False)
        while agent.spool.stats().pending_items and time.perf_counter() - start < 120:
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        assert receiver.prom is not None
        stored = receiver.prom.query('sum(count_over_time(bench_series{device="bench-backfill"}[2h]))')
        count = int(float(stored[0]["value"][1])) if stored else 0
    finally:
        agent.stop()
        receiver.stop()
    row(f"backfill {backlog:,} samples (incl. agent KPIs) -> Prometheus", f"{elapsed:.1f} s", "-",
        "<= 15 s", elapsed <= 15)
    row("  bench_series samples stored by Prometheus", f"{count:,}", "-", "180,000", count == 180_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0, help="outage length in seconds")
    parser.add_argument("--interval", type=float, default=1.0, help="collection/scrape interval")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelmon-bench-edge-"))
    bench_append(work)
    bench_backfill(work)
    bench_outage(work, args.outage, args.interval)
    header = ("benchmark", "modelmon", "prometheus agent", "goal", "result")
    widths = [max(len(r[i]) for r in [header, *ROWS]) for i in range(5)]
    for r in [header, tuple("-" * w for w in widths), *ROWS]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0 if all(r[4] != "FAIL" for r in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
