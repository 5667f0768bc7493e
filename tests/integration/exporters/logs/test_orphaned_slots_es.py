"""A slot left by a process that died with a bulk request answered but not yet
acknowledged in its spool: the shipper that takes the backlog over must not
index those events a second time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from modelmon.exporters.logs.elasticsearch_sink import ElasticsearchSink
from modelmon.exporters.logs.sinks import ItemBatch
from modelmon.spool import Spool


def test_events_in_flight_when_a_process_died_are_indexed_once(
    es: Any, index_name: str, make_shipper: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    # The dead process's slot (slot-0 stays free for the new shipper).
    with Spool(spool_dir / "slot-1", max_bytes=2**30, max_age=None) as orphan:
        for i in range(100):
            orphan.append(orjson.dumps({"message": f"event {i}", "n": i,
                                        "@timestamp": "2026-11-29T10:00:00.000Z"}))
        orphan.flush_buffer()
        rows = orphan.peek_payloads(40)
        # Its last bulk request reached Elasticsearch, then it died before acking.
        sink = ElasticsearchSink(url=es.url, index=index_name)
        try:
            sent = sink.send(ItemBatch(orphan.id + "-", rows))
        finally:
            sink.close()
        assert sorted(sent.delivered) == [seq for seq, _ in rows]
        orphan_id = orphan.id
        assert orphan.stats().pending == 100

    shipper = make_shipper(sink="elasticsearch", url=es.url, index=index_name,
                           spool_dir=spool_dir)
    assert shipper.spool.path.name == "slot-0"
    assert shipper.flush(30)

    docs = es.docs(index_name)
    markers = sorted(doc["n"] for doc in docs.values())
    assert markers == list(range(100)), "every event indexed exactly once"
    assert all(doc_id.startswith(orphan_id + "-") for doc_id in docs), (
        "events keep the id they were spooled with")
    if hasattr(es, "created_ids"):
        assert len(es.created_ids) == 100
    with Spool(spool_dir / "slot-1", max_bytes=2**30, max_age=None) as orphan:
        stats = orphan.stats()
        assert stats.pending == 0 and stats.delivered == 100 and stats.balanced
