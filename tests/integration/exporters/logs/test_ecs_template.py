"""With the template ``modelmon logs setup-es`` installs, every event modelmon
makes is indexed: none is refused by a mapping and dead-lettered. Against the
test server (which parses each document against the template's explicit
mappings, as Elasticsearch does) or a real Elasticsearch (``ES_URL``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import es_setup
from modelmon.exporters.service.monitor import ModelMonitor

HOSTILE: list[Any] = [
    0.93, np.array([0.1, 0.9]), [[0.1, 0.9], [0.8, 0.2]], [[0.1], [0.2, 0.8]], "high",
    float("nan"), float("inf"), 2**70, np.float32(0.5), np.int64(3), {"p": 0.5}, None,
]


def _install_template(es: Any, index_name: str) -> None:
    from elasticsearch import Elasticsearch

    client = getattr(es, "client", None) or Elasticsearch(es.url)
    es_setup.install(client, template=f"{index_name}-template", index_pattern=index_name,
                     policy=f"{index_name}-policy")


def test_every_point_and_record_is_indexed_under_the_installed_template(
    es: Any, index_name: str, make_shipper: Any,
) -> None:
    _install_template(es, index_name)
    if getattr(es, "scriptable", False):
        es.strict_mappings = True  # what we send is the type we mapped, not merely coercible
    shipper = make_shipper(sink="elasticsearch", url=es.url, index=index_name,
                           log_inputs=True, log_outputs=True)
    mon = ModelMonitor("fraud", version="3.1", registry=CollectorRegistry(), logs=shipper)
    sent = 0
    for value in HOSTILE:
        mon.log.request_received(request_id="r1", route="/predict", batch_size=value, inputs=value)
        mon.log.input_rejected([value, {"check": "age", "detail": value}], inputs=value)
        mon.log.prediction(0.01, prediction=value, score=value, batch_size=value)
        mon.log.prediction(value, outcome="error")
        mon.log.model_loaded(duration_seconds=value, source="s3://m")
        mon.log.drift_detected(feature="age", statistic="psi", value=value, threshold=0.2)
        mon.log.feedback_received(request_id="r1", y_true=value, correct=value)
        mon.log.edge_link_restored(device="cam", outage_seconds=value, backlog=value)
        sent += 8
    logger = logging.getLogger("modelmon.test.ecs_template")
    logger.propagate = False
    handler = shipper.handler()
    logger.addHandler(handler)
    try:
        logger.warning("extra", extra={"url": "https://x/predict", "event": {"duration": "slow"},
                                       "labels": {"n": 5}, "user": {"id": 7}})
        try:
            raise KeyError("k")
        except KeyError:
            logger.exception("failed")
        sent += 2
    finally:
        logger.removeHandler(handler)
    assert shipper.flush(30)
    stats = shipper.spool.stats()
    letters = [(d.reason, d.payload[:300]) for d in shipper.spool.dead_letters()]
    assert stats.dead_lettered == 0, letters
    assert stats.delivered == sent and len(es.docs(index_name)) == sent


def test_a_string_in_a_mapped_double_is_refused_as_elasticsearch_would(
    scriptable_es: Any, index_name: str, make_shipper: Any,
) -> None:
    # The test server holds documents to the template: what a real cluster
    # would refuse (the old "[0.1,0.9]" score) is a dead letter here too.
    _install_template(scriptable_es, index_name)
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    shipper.emit({"message": "ok", "model": {"score": "0.5"}})  # coerced, as Elasticsearch does
    shipper.emit({"message": "refused", "model": {"score": "[0.1,0.9]"}})
    shipper.emit({"message": "refused", "model": {"drift": "psi"}})
    assert shipper.flush(20)
    reasons = sorted(letter.reason for letter in shipper.spool.dead_letters())
    assert len(reasons) == 2 and all("document_parsing_exception" in r for r in reasons)
    assert any("[model.score]" in r for r in reasons) and any("[model.drift]" in r for r in reasons)
