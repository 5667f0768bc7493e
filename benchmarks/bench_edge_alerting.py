"""Edge alerts to Alertmanager: cost of the alerting path, side by side.

    .venv/bin/python benchmarks/bench_edge_alerting.py [--alerts 50] [--hours 1]

1. Backlog after an outage: ``--hours`` offline with ``--alerts`` firing
   alerts resent every minute (Prometheus's default resend_delay; the
   evaluations in between send nothing): the alert spool's records, delivered by the core delivery
   worker through ``AlertmanagerDestination`` (coalesced batches) into a real
   Alertmanager, against the same notifications POSTed one evaluation at a
   time (what a notifier without coalescing would send). Time until delivered,
   and POSTs.
2. RSS of ``modelmon edge run`` (system collector, the generated rule file,
   the query API) with and without ``edge.alerting`` to that Alertmanager,
   beside the Prometheus agent (same Debian binary, ``--enable-feature=agent``)
   scraping it and remote-writing to the same receiver: what alerting adds,
   and the issue's goal (RSS <= 40 MB with rules, alerting and the query API);
   the same with the generated edge rule file (what a device runs), and the
   agent with the system collector alone (what rules, alerting and the query
   API add). 30 s after start: the 10 m query window is not full yet (16 bytes
   a sample when it is, ``exporters/edge/promql/storage.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # support.*

from _table import Row, print_table

from modelmon.demo.processes import prometheus_config, start_prometheus
from modelmon.exporters.edge.alerting.alertmanager import (
    AlertmanagerClient,
    AlertmanagerDestination,
)
from modelmon.exporters.edge.alerting.config import AlertmanagerTarget
from modelmon.exporters.edge.alerting.notifier import rfc3339
from modelmon.spool import Spool
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from support.alertmanager import Alertmanager, Webhook
from support.edge_harness import Agent, Receiver

RULES = Path(__file__).resolve().parents[1] / "alert_rules" / "modelmon.rules.yml"
EDGE_RULES = RULES.with_name("modelmon.edge.rules.yml")  # the group a device runs
# The cloud file reads up to 30 days, beyond edge.rules_max_range's 6h default.
CLOUD_RANGE = {"rules_max_range": "31d"}


def backlog_records(alerts: int, hours: float) -> list[list[dict[str, object]]]:
    """One record per evaluation that had something to send: every alert fired at
    the start and was resent every 60 s (4 * 60 s validity), evaluations every 10 s."""
    start = int(time.time() * 1000) - int(hours * 3_600_000)
    records = []
    for t in range(start, start + int(hours * 3_600_000), 60_000):
        records.append([{
            "labels": {"alertname": "BenchAlert", "device": "bench", "i": str(i)},
            "annotations": {"summary": f"alert {i}"},
            "startsAt": rfc3339(start), "endsAt": rfc3339(t + 240_000),
            "generatorURL": "http://bench:9108/graph?g0.expr=vector%281%29&g0.tab=1",
            "status": "firing",
        } for i in range(alerts)])
    return records


def bench_backlog(work: Path, am: Alertmanager, alerts: int, hours: float) -> list[Row]:
    records = backlog_records(alerts, hours)
    spool = Spool(work / "alert-spool", max_bytes=2**30, max_age=None)
    try:
        for i in range(0, len(records), 100):  # one evaluation at a time is the agent's way
            chunk = records[i:i + 100]
            spool.append_many([json.dumps(r).encode() for r in chunk], created=time.time(),
                              items=[len(r) for r in chunk])
        spool.flush_buffer()
        destination = AlertmanagerDestination(  # as the agent builds it
            [AlertmanagerTarget(am.url)],
            more_after=lambda seq: bool(spool.peek_payloads(1, after_seq=seq)))
        posts = 0
        original = destination.clients[0].post

        def counted(body: bytes) -> object:
            nonlocal posts
            posts += 1
            return original(body)

        destination.clients[0].post = counted  # type: ignore[method-assign]
        worker = DeliveryWorker(spool, destination, DeliverySettings(batch_records=1000,
                                                                     batch_bytes=4 * 2**20))
        start = time.perf_counter()
        worker.drain()
        ours = time.perf_counter() - start
        assert spool.stats().pending == 0
    finally:
        spool.close()
    client = AlertmanagerClient(AlertmanagerTarget(am.url))
    bodies = [json.dumps([{k: v for k, v in a.items() if k != "status"} for a in r]).encode()
              for r in records]
    start = time.perf_counter()
    for body in bodies:
        assert client.post(body).outcome == "success"
    theirs = time.perf_counter() - start
    client.close()
    notices = sum(len(r) for r in records)
    name = f"backlog {hours:g} h offline, {alerts} firing alerts ({notices} notices)"
    return [
        (f"{name}: time to Alertmanager", f"{ours * 1000:.0f} ms",
         f"{theirs * 1000:.0f} ms", ours / theirs, "<= 1x", ours <= theirs),
        (f"{name}: POSTs", str(posts), str(len(records)), posts / len(records), "-", None),
    ]


def bench_rss(work: Path, am: Alertmanager) -> list[Row]:
    receiver = Receiver(work / "receiver")
    receiver.start()
    rss: dict[str, float] = {}
    prom_rss = 0.0
    alerting = {"alertmanagers": [{"url": am.url}]}
    configs: list[tuple[str, dict[str, object]]] = [
        ("system collector only", {}),
        ("without alerting", {"rules": [str(RULES)], "query_window": "10m", **CLOUD_RANGE}),
        ("with alerting", {"rules": [str(RULES)], "query_window": "10m", "alerting": alerting,
                           **CLOUD_RANGE}),
        ("edge rules with alerting", {"rules": [str(EDGE_RULES)], "query_window": "10m",
                                      "alerting": alerting}),
    ]
    try:
        for name, extra in configs:
            agent = Agent(work / name.replace(" ", "-"), receiver.write_url, device="bench-rss",
                          interval=1.0)
            agent.extra = extra
            agent.start()
            prom_agent = None
            try:
                if name == "with alerting":  # the baseline, scraping this agent
                    config = prometheus_config(
                        [f"127.0.0.1:{agent.listen_port}"], scrape_interval="1s", job="promagent",
                        extra={"remote_write": [{"url": receiver.write_url}]})
                    prom_agent = start_prometheus(config, workdir=work / "prom-agent",
                                                  extra_args=["--enable-feature=agent"])
                time.sleep(30)
                proc = psutil.Process(agent.proc.pid)  # type: ignore[union-attr]
                samples = []
                for _ in range(10):
                    samples.append(proc.memory_info().rss / 2**20)
                    time.sleep(0.5)
                rss[name] = max(samples)
                if prom_agent is not None:
                    prom_rss = psutil.Process(prom_agent.proc.pid).memory_info().rss / 2**20
            finally:
                agent.stop()
                if prom_agent is not None:
                    prom_agent.stop()
    finally:
        receiver.stop()
    with_, without = rss["with alerting"], rss["without alerting"]
    edge, base = rss["edge rules with alerting"], rss["system collector only"]
    return [
        ("agent RSS, rules + query API + alerting vs without alerting", f"{with_:.1f} MB",
         f"{without:.1f} MB", with_ / without, "-", None),
        ("agent RSS, rules + query API + alerting vs the Prometheus agent", f"{with_:.1f} MB",
         f"{prom_rss:.1f} MB", with_ / prom_rss, "<= 40 MB", with_ <= 40.0),
        ("agent RSS, the generated edge rule file + query API + alerting vs the Prometheus "
         "agent", f"{edge:.1f} MB", f"{prom_rss:.1f} MB", edge / prom_rss, "<= 40 MB",
         edge <= 40.0),
        ("agent RSS, edge rules + query API + alerting vs the system collector alone",
         f"{edge:.1f} MB", f"{base:.1f} MB", edge / base, "-", None),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-edge-alerting-"))
    hook = Webhook()
    am = Alertmanager(work / "alertmanager", hook.url)
    am.start()
    try:
        rows = bench_backlog(work, am, args.alerts, args.hours)
        if not args.skip_rss:
            rows += bench_rss(work, am)
    finally:
        am.stop()
        hook.close()
    return 0 if print_table(rows, "edge alerting") else 1


if __name__ == "__main__":
    raise SystemExit(main())
