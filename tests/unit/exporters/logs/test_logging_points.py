"""mon.log.<point>(...) events: ECS fields, the model namespace, payload rules."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import correlation
from modelmon.exporters.service.monitor import ModelMonitor


def monitor(shipper: Any) -> ModelMonitor:
    return ModelMonitor("fraud", version="3.1", framework="sklearn",
                        registry=CollectorRegistry(), logs=shipper)


def test_every_point_is_an_ecs_event_with_the_model_namespace(file_shipper: Any) -> None:
    shipped = file_shipper()
    mon = monitor(shipped.shipper)
    log = mon.log
    log.request_received(request_id="r1", route="/predict", batch_size=4)
    log.input_rejected({"age": "out of range", "income": "missing"}, request_id="r1")
    log.prediction(0.012, request_id="r1", batch_size=4)
    try:
        raise ValueError("bad shape (3,)")
    except ValueError as exc:
        log.error(exc, request_id="r1")
    log.model_loaded(duration_seconds=1.5, source="s3://models/fraud/3.1")
    log.model_reloaded(previous_version="3.0")
    log.model_rolled_back(from_version="3.2", reason="error rate")
    log.drift_detected(feature="age", statistic="psi", value=0.31, threshold=0.2)
    log.feedback_received(request_id="r1", correct=True)
    log.edge_link_lost(device="cam-7", reason="timeout")
    log.edge_link_restored(device="cam-7", outage_seconds=120.0, backlog=5000)
    log.edge_alert(device="cam-7", alert={
        "status": "firing", "labels": {"alertname": "Hot", "device": "cam-7"},
        "startsAt": "2026-12-01T15:36:45.589Z", "endsAt": "2026-12-01T15:40:45.589Z",
        "generatorURL": "http://cam-7:9108/graph?g0.expr=up&g0.tab=1"})
    events = shipped.events()
    actions = [e["event"]["action"] for e in events]
    assert actions == [
        "request-received", "input-rejected", "prediction", "error", "model-loaded",
        "model-reloaded", "model-rolled-back", "drift-threshold-crossed", "feedback-received",
        "edge-link-lost", "edge-link-restored", "edge-alert",
    ]
    for e in events:
        assert e["@timestamp"].endswith("Z") and e["log"]["level"] and e["message"]
        assert e["service"]["name"] == "svc" and e["host"]["hostname"]
        assert e["model"]["name"] == "fraud" and e["model"]["version"] == "3.1"
        assert e["event"]["id"]  # deterministic id, also in file/Logstash documents
    by = {e["event"]["action"]: e for e in events}
    assert by["input-rejected"]["model"]["violation_count"] == 2
    assert by["prediction"]["event"]["duration"] == 12_000_000  # ns
    err = by["error"]["error"]
    assert err["type"] == "ValueError" and "bad shape" in err["message"]
    assert "Traceback" in err["stack_trace"]
    assert by["drift-threshold-crossed"]["model"]["drift"]["value"] == 0.31
    assert by["edge-link-restored"]["model"]["edge"]["backlog"] == 5000
    alert = by["edge-alert"]["model"]["edge"]["alert"]
    assert alert["name"] == "Hot" and alert["status"] == "firing"
    assert alert["starts_at"] == "2026-12-01T15:36:45.589Z"
    assert by["edge-alert"]["log"]["level"] == "warning"
    assert by["edge-alert"]["event"]["type"] == ["start"]
    assert len({e["event"]["id"] for e in events}) == len(events)


def test_inputs_and_outputs_are_logged_only_when_configured_and_truncated(
    file_shipper: Any,
) -> None:
    quiet = file_shipper()
    monitor(quiet.shipper).log.prediction(0.01, prediction=[1, 0], score=0.93,
                                          inputs=np.zeros((2, 3)))
    [event] = quiet.events()
    assert "input" not in event["model"] and "prediction" not in event["model"]
    quiet.shipper.close()

    loud = file_shipper(log_inputs=True, log_outputs=True, max_payload_chars=20)
    monitor(loud.shipper).log.prediction(0.01, prediction=[1, 0], score=0.93,
                                         inputs=np.arange(100))
    event = loud.events()[-1]
    assert event["model"]["prediction"] == "[1,0]" and event["model"]["score"] == 0.93
    assert event["model"]["input"].startswith("[0,1,2,3") and "truncated" in event["model"]["input"]


def test_correlation_id_is_attached_to_every_event_of_the_request(file_shipper: Any) -> None:
    shipped = file_shipper()
    token = correlation.set_current("req-42")
    try:
        monitor(shipped.shipper).log.prediction(0.01)
        shipped.shipper.emit({"message": "plain event"})
    finally:
        correlation.end_request(token)
    shipped.shipper.emit({"message": "outside"})
    events = shipped.events()
    assert [e.get("trace", {}).get("id") for e in events] == ["req-42", "req-42", None]


def test_stdlib_logging_records_ship_with_extra_fields_and_exceptions(file_shipper: Any) -> None:
    shipped = file_shipper()
    logger = logging.getLogger("modelmon.test.app")
    logger.propagate = False
    handler = shipped.shipper.handler()
    logger.addHandler(handler)
    try:
        logger.warning("slow batch %d", 7, extra={"labels": {"team": "risk"}})
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            logger.exception("scoring failed")
    finally:
        logger.removeHandler(handler)
    first, second = shipped.events()
    assert first["message"] == "slow batch 7" and first["log"]["level"] == "warning"
    assert first["log"]["logger"] == "modelmon.test.app" and first["labels"] == {"team": "risk"}
    assert second["error"]["type"] == "ZeroDivisionError" and second["log"]["level"] == "error"


def test_a_monitor_without_shipper_discards_quietly() -> None:
    mon = ModelMonitor("m", registry=CollectorRegistry())
    assert mon.log.prediction(0.1) is None


def test_unserialisable_values_never_raise_and_a_failing_processor_is_counted(
    file_shipper: Any,
) -> None:
    def broken(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("plugin bug")

    registry = CollectorRegistry()
    shipped = file_shipper(processors=[broken], registry=registry)
    assert shipped.shipper.emit({"message": "with an object", "obj": object()}) is not None
    [event] = shipped.events()
    assert event["obj"].startswith("<object object")
    assert registry.get_sample_value("modelmon_log_processor_failures_total",
                                     {"processor": "broken"}) == 1


def test_event_duration_is_whole_nanoseconds_for_any_seconds() -> None:
    """ECS event.duration is a long: any finite seconds value gives its nanoseconds,
    rounded (0.0123 s * 1e9 is 12300000.000000002, which a whole-number check refused)."""
    from modelmon.exporters.logs.fields import nanoseconds

    for seconds in (0.0123, 0.1, 1 / 3, 2.5e-9, 0.0, 86400.25, 7):
        assert nanoseconds(seconds) == round(seconds * 1e9), seconds
    assert nanoseconds(0.0123) == 12_300_000
    for bad in (float("nan"), float("inf"), 1e300, None, "1.5", True):
        assert nanoseconds(bad) is None, bad
