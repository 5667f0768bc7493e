"""Log pipeline benchmark: one run, a side-by-side ratio table.

    .venv/bin/python benchmarks/bench_logs.py [--events 200000]

1. End-to-end events/s into the Elasticsearch test bulk server on loopback
   (it runs in its own process), 300-byte events, default fsync mode
   ("interval"): modelmon (emit -> spool -> worker -> _bulk create) against the
   pipeline a user would write by hand (ecs-logging formatter +
   elasticsearch.helpers.bulk per 1000 events, no spool, on the caller).
2. Cost on the calling thread per logging call: the shipper's
   logging.Handler against a logging.Handler that discards. Reported as
   CPU time of the calling thread (time.thread_time: what the caller itself
   spends; the background writer and shipper run on other threads) in a
   tight loop (the least of 5 rounds of 20,000 calls, as timeit reports; the
   shipper ships meanwhile) and at a steady 5,000 calls/s once that backlog is
   shipped, and as the median wall time per call at 5,000 calls/s (the latency
   a request sees; of the 4 rounds of 5,000 calls, the one with the least CPU).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support.*

INDEX = "logs-modelmon-bench"


def _serve(conn: Any) -> None:
    from support.es_servers import EsTestServer

    server = EsTestServer().start()
    conn.send(server.url)
    conn.recv()  # "count?"
    while True:
        msg = conn.recv()
        if msg == "stop":
            break
        conn.send(server.count(msg))


class BulkServer:
    """The test bulk server in its own process, so it does not share our GIL."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()
        self.url = self._conn.recv()
        self._conn.send("count?")

    def count(self, index: str) -> int:
        self._conn.send(index)
        return int(self._conn.recv())

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(5)


def event_300(i: int) -> dict[str, Any]:
    # 300 bytes of JSON once modelmon adds @timestamp, ecs, service and host.
    return {"message": f"prediction served for request {i:08d}",
            "log": {"level": "info"},
            "event": {"action": "prediction", "dataset": "modelmon.model"},
            "model": {"name": "fraud", "version": "3.1", "latency_seconds": 0.0123}}


def bench_modelmon_e2e(url: str, n: int, spool_dir: Path) -> tuple[float, int]:
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.logs import LogShipper

    shipper = LogShipper(sink="elasticsearch", url=url, index=INDEX + "-ours",
                         spool_dir=spool_dir, registry=CollectorRegistry(),
                         plugin_processors=False, batch_size=2000)
    import orjson

    size = len(orjson.dumps({**shipper._base, "@timestamp": "2024-01-01T00:00:00.000Z",
                              **event_300(0)}))
    # Each event is built in the loop, as an application builds it (a list of
    # 200,000 prebuilt events would also make every garbage collection walk a
    # million dicts that no real producer holds).
    start = time.perf_counter()
    emit = shipper.emit
    for i in range(n):
        emit(event_300(i))
    assert shipper.flush(300)
    elapsed = time.perf_counter() - start
    shipper.close()
    return n / elapsed, size


def bench_handwritten_e2e(url: str, n: int) -> float:
    import ecs_logging
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(url)
    formatter = ecs_logging.StdlibFormatter()

    class BulkHandler(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.buffer: list[dict[str, Any]] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.buffer.append({"_op_type": "create", "_index": INDEX + "-hand",
                                "_source": formatter.format(record)})
            if len(self.buffer) >= 1000:
                self.flush()

        def flush(self) -> None:
            if self.buffer:
                helpers.bulk(client, self.buffer, chunk_size=1000)
                self.buffer = []

    logger = logging.getLogger("bench.hand")
    logger.propagate = False
    handler = BulkHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    msg = "prediction served for request %08d"
    start = time.perf_counter()
    for i in range(n):
        logger.info(msg, i)
    handler.flush()
    elapsed = time.perf_counter() - start
    logger.removeHandler(handler)
    client.close()
    return n / elapsed


class Discard(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


def caller_cost(handler: logging.Handler, n: int) -> tuple[float, float, float]:
    """(CPU us per call on the calling thread in a tight loop, and at a steady
    5,000 calls/s; median wall us per call at 5,000 calls/s, of the round with
    the least CPU).

    Between the two the shipper's backlog from the tight loop is shipped
    (``flush``): the steady phase measures a server logging at 5,000 calls/s,
    not one that also competes with shipping 100,000 earlier events."""
    logger = logging.getLogger(f"bench.cost.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    msg = "prediction served for request %08d"
    for i in range(2000):  # warm up
        logger.info(msg, i)
    # The least CPU of five rounds (as timeit reports): on a shared 2-core VM a
    # round can lose its core's caches to a neighbour; the shipper ships
    # during every round.
    rounds = 5
    cpu = float("inf")
    for r in range(rounds):
        t0 = time.thread_time()
        for i in range(r * n // rounds, (r + 1) * n // rounds):
            logger.info(msg, i)
        cpu = min(cpu, (time.thread_time() - t0) / (n // rounds) * 1e6)
    shipper = getattr(handler, "shipper", None)
    if shipper is not None:
        assert shipper.flush(120)
    # Four rounds of 5,000 calls at 5,000 calls/s; the round with the least
    # CPU counts (as for the tight loop: a neighbour can spoil a whole second).
    period = 1 / 5000
    perf, thread_time = time.perf_counter, time.thread_time
    best: tuple[float, float] = (float("inf"), float("inf"))
    for _ in range(4):
        walls = []
        cpus = []
        next_at = perf()
        for i in range(5000):
            # Busy-wait between calls: sleeping would measure how slowly this
            # VM's vCPU wakes up (a bare LogRecord takes twice as long after a sleep).
            while perf() < next_at:
                pass
            c = thread_time()
            s = perf()
            logger.info(msg, i)
            walls.append(perf() - s)
            cpus.append(thread_time() - c)
            next_at += period
        best = min(best, (statistics.fmean(cpus), statistics.median(walls)))
    logger.removeHandler(handler)
    return cpu, best[0] * 1e6, best[1] * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.logs import LogShipper

    server = BulkServer()
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ours, size = bench_modelmon_e2e(server.url, args.events, Path(tmp) / "e2e")
        hand = bench_handwritten_e2e(server.url, min(args.events, 100_000))
        ok_count = server.count(INDEX + "-ours") == args.events
        rows.append((f"end-to-end events/s ({size} B events, fsync=interval)",
                     f"{ours:,.0f}", f"{hand:,.0f} (hand-written)", ">= 50,000",
                     "pass" if ours >= 50_000 and ok_count else "FAIL"))
        rows.append(("  ratio modelmon / hand-written", f"{ours / hand:.2f}x", "", "", ""))
        discard = caller_cost(Discard(), 100_000)
        shipper = LogShipper(sink="elasticsearch", url=server.url, index=INDEX + "-cost",
                             spool_dir=Path(tmp) / "cost", registry=CollectorRegistry(),
                             plugin_processors=False)
        ours = caller_cost(shipper.handler(), 100_000)
        shipper.close()
        redact = LogShipper(sink="elasticsearch", url=server.url, index=INDEX + "-cost",
                            spool_dir=Path(tmp) / "cost2", registry=CollectorRegistry())
        redacted = caller_cost(redact.handler(), 100_000)
        redact.close()
    server.stop()
    for label, cost in (("shipper handler, no processors", ours),
                        ("shipper handler + PII redaction", redacted)):
        for what, i in (("CPU us/call, tight loop", 0), ("CPU us/call @5k/s", 1),
                        ("wall us/call @5k/s (median)", 2)):
            extra = cost[i] - discard[i]
            rows.append((f"caller {what}, {label}", f"{cost[i]:.2f}",
                         f"{discard[i]:.2f} (discard)", "<= +5.00",
                         f"{'pass' if extra <= 5 else 'FAIL'} (+{extra:.2f})"))
    widths = [max(len(r[i]) for r in rows + [("measure", "modelmon", "baseline", "goal",
                                              "result")]) for i in range(5)]
    header = ("measure", "modelmon", "baseline", "goal", "result")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.events:,} events")
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
