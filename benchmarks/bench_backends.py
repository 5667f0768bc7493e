"""Backend sinks side by side: events/s and bytes on the wire per event, one run.

    .venv/bin/python benchmarks/bench_backends.py [--events 20000]

Each sink ships the same events (about 300 bytes of ECS JSON each, the
default redaction on) through a LogShipper (emit all, then flush: spool,
delivery worker, sink) to a server in its own process on loopback: the
Elasticsearch test bulk server (the baseline), moto's S3 server (the ``s3``
archive sink), moto's CloudWatch Logs (the ``cloudwatch`` sink), and the GELF
test input over HTTP (bulk) and TCP. A byte
counting TCP relay in the server's process measures what the client sends
(request lines, headers, bodies). Also printed: requests per 1,000 events
(S3 PUTs, PutLogEvents, Elasticsearch _bulk requests), the cost drivers of
managed services; for CloudWatch also the bytes it bills as ingested (each
message's UTF-8 size + 26).
Informational rows (no goal): the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support.*

from _table import Row, print_table  # noqa: E402


def _relay(upstream: int, counted: list[int]) -> int:
    """A TCP relay to ``upstream`` counting the bytes clients send; its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def pipe(src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(65536):
                if count:
                    counted[0] += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept() -> None:
        while True:
            client, _ = server.accept()
            backend = socket.create_connection(("127.0.0.1", upstream))
            threading.Thread(target=pipe, args=(client, backend, True), daemon=True).start()
            threading.Thread(target=pipe, args=(backend, client, False), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def _serve(kind: str, conn: Any) -> None:
    counted = [0]
    requests: Any = lambda: 0  # noqa: E731
    if kind == "es":
        from support.es_servers import EsTestServer

        es = EsTestServer().start()
        port = es.port
        requests = lambda: es.bulk_requests  # noqa: E731
    elif kind in ("s3", "cloudwatch"):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        port = moto.get_host_and_port()[1]
    else:
        from support import gelf_server

        if kind == "gelf_http":
            sink, server = gelf_server.serve_http()
            port = server.server_port
        else:
            sink, port, _ = gelf_server.serve_tcp()
    conn.send(_relay(port, counted))
    while conn.recv() == "stats":
        conn.send((counted[0], requests()))


def _events(n: int) -> list[dict[str, Any]]:
    return [{"message": "prediction served", "event": {"action": "prediction",
             "dataset": "modelmon.inference", "duration": 12_500_000 + i},
             "model": {"name": "fraud-detector", "version": "3.2.1", "prediction": i % 2,
                       "score": (i % 997) / 997}, "http": {"request": {"id": f"req-{i:08d}"}}}
            for i in range(n)]


def _run(kind: str, n: int, tmp: Path) -> tuple[float, float, float, int]:
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.logs import LogShipper

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(kind, child), daemon=True)
    proc.start()
    port = parent.recv()
    options: dict[str, Any]
    if kind == "es":
        options = {"sink": "elasticsearch", "url": f"http://127.0.0.1:{port}"}
    elif kind == "s3":
        import boto3

        creds = {"region_name": "us-east-1", "aws_access_key_id": "AKIABENCH",
                 "aws_secret_access_key": "bench"}
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **creds).create_bucket(
            Bucket="archive")
        options = {"sink": "s3", "bucket": "archive", "endpoint_url": f"http://127.0.0.1:{port}",
                   "region": "us-east-1", "access_key_id": "AKIABENCH",
                   "secret_access_key": "bench"}
    elif kind == "cloudwatch":
        options = {"sink": "cloudwatch", "log_group": "/modelmon/bench",
                   "endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1",
                   "access_key_id": "AKIABENCH", "secret_access_key": "bench"}
    elif kind == "gelf_http":
        options = {"sink": "gelf", "transport": "http", "url": f"http://127.0.0.1:{port}/gelf",
                   "bulk": True}
    else:
        options = {"sink": "gelf", "transport": "tcp", "port": port}
    parent.send("stats")
    before, _ = parent.recv()  # the bucket's creation
    shipper = LogShipper(spool_dir=tmp / kind, registry=CollectorRegistry(), batch_size=1000,
                         service_name="fraud-api", **options)
    events = _events(n)
    started = time.perf_counter()
    for event in events:
        shipper.emit(event)
    assert shipper.flush(600), f"{kind}: not flushed"
    elapsed = time.perf_counter() - started
    objects = getattr(shipper._sink, "uploads", 0) or getattr(shipper._sink, "puts", 0)
    shipper.close(5)
    time.sleep(0.2)
    parent.send("stats")
    sent, requests = parent.recv()
    parent.send("stop")
    proc.join(5)
    requests = objects or requests
    return n / elapsed, (sent - before) / n, requests * 1000 / n, objects


def _ingested_bytes_per_event(n: int) -> float:
    """What CloudWatch Logs counts of each event (its message in UTF-8 + 26), the
    messages made as the sink makes them from the spooled documents."""
    from modelmon.exporters.logs.cloudwatch_batches import EVENT_OVERHEAD

    with tempfile.TemporaryDirectory() as tmp:
        from prometheus_client import CollectorRegistry

        from modelmon.exporters.logs import LogShipper

        shipper = LogShipper(sink="file", spool_dir=Path(tmp), registry=CollectorRegistry(),
                             service_name="fraud-api", path=Path(tmp) / "events.jsonl")
        sample = _events(min(n, 1000))
        for event in sample:
            shipper.emit(event)
        assert shipper.flush(60)
        shipper.close(5)
        lines = (Path(tmp) / "events.jsonl").read_bytes().splitlines()
    # The file sink's lines are the documents with event.id: the sink's messages.
    return sum(len(line) + EVENT_OVERHEAD for line in lines) / len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        results = {kind: _run(kind, args.events, Path(tmp))
                   for kind in ("es", "s3", "cloudwatch", "gelf_http", "gelf_tcp")}
    es_rate, es_bytes, es_requests, _ = results["es"]
    for kind, label in (("s3", "s3 archive"), ("cloudwatch", "cloudwatch logs"),
                        ("gelf_http", "gelf http bulk"), ("gelf_tcp", "gelf tcp")):
        rate, per_event, per_k, _ = results[kind]
        rows.append((f"{label}: events/s", f"{rate:,.0f}", f"{es_rate:,.0f}", rate / es_rate,
                     "-", None))
        rows.append((f"{label}: bytes sent/event", f"{per_event:,.0f}", f"{es_bytes:,.0f}",
                     per_event / es_bytes, "-", None))
        if kind == "s3":
            rows.append(("s3 archive: requests/1000 events (PUT vs _bulk)", f"{per_k:.1f}",
                         f"{es_requests:.1f}", per_k / es_requests, "-", None))
        if kind == "cloudwatch":
            rows.append(("cloudwatch logs: requests/1000 events (PutLogEvents vs _bulk)",
                         f"{per_k:.1f}", f"{es_requests:.1f}", per_k / es_requests, "-", None))
            billed = _ingested_bytes_per_event(args.events)
            rows.append(("cloudwatch logs: bytes billed as ingested/event (UTF-8 + 26)",
                         f"{billed:,.0f}", f"{es_bytes:,.0f}", billed / es_bytes, "-", None))
    print_table(rows, f"backends, {args.events} events, baseline: Elasticsearch sink "
                      "(test bulk server)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
