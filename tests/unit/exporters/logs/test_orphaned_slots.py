"""Events left in spool slots by processes that are gone (a server scaled down
to fewer workers) are shipped by the next shipper that uses the spool_dir."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from modelmon import LogShipper
from modelmon.demo.processes import free_port
from modelmon.spool import Spool


def test_a_new_shipper_ships_what_two_gone_processes_left(tmp_path):
    spool_dir = tmp_path / "spool"
    dead_end = f"http://127.0.0.1:{free_port()}"  # nothing listens: every send is retried
    workers = [LogShipper("logstash_http", url=dead_end, spool_dir=spool_dir,
                          registry=CollectorRegistry(), backoff_initial=0.05)
               for _ in range(2)]
    for n, worker in enumerate(workers):
        for i in range(50):
            assert worker.emit({"message": f"worker {n} event {i}"}) is not None
    for worker in workers:
        worker.close(timeout=0.2)  # gives up: the events stay in slot-0 and slot-1
    assert sorted(p.name for p in spool_dir.iterdir() if p.name.startswith("slot-")) == [
        "slot-0", "slot-1"]

    expected_ids = set()
    for slot in ("slot-0", "slot-1"):
        with Spool(spool_dir / slot, max_bytes=2**30, max_age=None) as spool:
            expected_ids |= {f"{spool.id}-{r.seq}" for r in spool.peek(1000)}
    assert len(expected_ids) == 100

    out = tmp_path / "events.jsonl"
    survivor = LogShipper("file", path=out, spool_dir=spool_dir, registry=CollectorRegistry())
    try:
        assert survivor.flush(30)
        messages = [json.loads(line)["message"] for line in out.read_text().splitlines()]
        assert sorted(messages) == sorted(f"worker {n} event {i}" for n in range(2)
                                          for i in range(50))
        ids = [json.loads(line)["event"]["id"] for line in out.read_text().splitlines()]
        assert set(ids) == expected_ids, "each event keeps the id it was spooled with"
    finally:
        survivor.close()
