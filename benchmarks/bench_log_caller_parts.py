"""Where the log handler's cost on the calling thread goes: one table, one run.

    .venv/bin/python benchmarks/bench_log_caller_parts.py

Each piece of ``ShipperHandler.emit`` is timed alone (calling-thread CPU,
``time.thread_time``, the least of 5 rounds), then the whole ``logger.info``
against a discarding handler, with the shipper's background threads idle (an
unreachable Elasticsearch: only the spool writer runs) and shipping (a file
sink). The difference between the sum of the pieces and the loop is what the
background threads cost the caller (caches, the GIL).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from modelmon.demo.processes import free_port
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.correlation import current

MSG = "prediction served for request %08d"


def per_call(fn: Callable[[], object], n: int = 20_000, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n * 1e6)
    return best


def logging_loop(handler: logging.Handler, name: str) -> float:
    logger = logging.getLogger(f"bench.parts.{name}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    i = 0

    def call() -> None:
        nonlocal i
        i += 1
        logger.info(MSG, i)

    per_call(call, 2000, 1)  # warm up
    return per_call(call)


class Discard(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


def main() -> int:
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        shipper = LogShipper(sink="file", spool_dir=f"{tmp}/parts", registry=CollectorRegistry(),
                             plugin_processors=False)
        handler = shipper.handler()
        record = logging.LogRecord("bench.parts", logging.INFO, "/srv/app.py", 10, MSG, (5,),
                                   None, "predict")
        serializer = shipper.record_serializer()
        assert serializer is not None
        data = serializer.compact(record, None)
        rows.append(("LogRecord() (paid by every handler)", per_call(
            lambda: logging.LogRecord("bench.parts", logging.INFO, "/srv/app.py", 10, MSG, (5,),
                                      None, "predict"))))
        rows.append(("  is_plain(record)", per_call(lambda: serializer.is_plain(record))))
        rows.append(("  correlation id lookup", per_call(current)))
        rows.append((f"  compact record, spooled ({len(data)} B)",
                     per_call(lambda: serializer.compact(record, None))))
        rows.append((f"(worker) render the ECS document ({len(serializer.render(data))} B)",
                     per_call(lambda: serializer.render(data))))
        rows.append(("  Spool.append (journal frame + copy)",
                     per_call(lambda: shipper.spool.append(data))))
        rows.append(("ShipperHandler.emit, whole", per_call(lambda: handler.emit(record))))
        shipper.close(timeout=30)

        rows.append(("logger.info, discarding handler", logging_loop(Discard(), "discard")))
        dead = LogShipper(sink="elasticsearch", url=f"http://127.0.0.1:{free_port()}",
                          spool_dir=f"{tmp}/dead", registry=CollectorRegistry(),
                          plugin_processors=False, backoff_initial=5.0)
        rows.append(("logger.info, shipper (Elasticsearch unreachable)",
                     logging_loop(dead.handler(), "dead")))
        dead.close(timeout=0)
        live = LogShipper(sink="file", spool_dir=f"{tmp}/live", registry=CollectorRegistry(),
                          plugin_processors=False)
        rows.append(("logger.info, shipper (file sink, shipping)",
                     logging_loop(live.handler(), "live")))
        live.close(timeout=30)
    width = max(len(r[0]) for r in rows)
    print(f"python {sys.version.split()[0]}: calling-thread CPU per call, least of 5 rounds")
    print(f"{'piece'.ljust(width)}  us/call")
    for label, us in rows:
        print(f"{label.ljust(width)}  {us:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
