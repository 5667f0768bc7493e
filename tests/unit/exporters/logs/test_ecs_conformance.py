"""Every document we ship fits ECS and the index template ``modelmon logs setup-es``
installs: what a strict consumer (Elasticsearch with that template) would refuse
or dead-letter never leaves.

The documents checked are the bytes the shipper spools, parsed back, for every
logging point and stdlib records, with ordinary and hostile values.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper, ecs_schema, es_setup
from modelmon.exporters.logs.ecs import from_log_record
from modelmon.exporters.logs.points import ModelLog
from support.es_mapping import mapped_types, mapping_errors

# ECS's field sets (labels is no set: a flat object of keywords, checked below).
ECS_SETS = tuple(sorted(name for name, kind in ecs_schema.TOP_LEVEL_TYPES.items()
                        if kind == "object" and name != "labels"))


def ecs_mappings() -> dict[str, Any]:
    """ECS as explicit mappings, to run the same strict check with it."""
    root: dict[str, Any] = {"properties": {}}
    for name, kind in sorted(ecs_schema.FIELD_TYPES.items()):
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            node = node["properties"].setdefault(part, {"properties": {}})
        spec = node["properties"].setdefault(leaf, {})
        if kind in ("object", "nested"):
            spec.setdefault("properties", {})
        else:
            spec["type"] = kind
    return root


ECS = ecs_mappings()
TEMPLATE = es_setup.mappings()
# Under these names a field's type must never be left to dynamic mapping.
MAPPED_NAMESPACES = ("model.", *(s + "." for s in ECS_SETS))


def strict_json(data: bytes) -> dict[str, Any]:
    """Parse as Elasticsearch does: NaN and Infinity are not JSON."""
    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not valid JSON")

    doc: dict[str, Any] = json.loads(data, parse_constant=refuse)
    return doc


def ecs_violations(doc: dict[str, Any]) -> list[str]:
    errors = mapping_errors(ECS, doc, strict=True, require_mapped=tuple(s + "." for s in ECS_SETS))
    for key, value in doc.items():
        kind = ecs_schema.TOP_LEVEL_TYPES.get(key)
        if kind == "object" and not isinstance(value, dict):
            errors.append(f"[{key}] is an ECS field set, got {value!r:.60}")
    labels = doc.get("labels", {})
    for key, value in labels.items() if isinstance(labels, dict) else ():
        if not isinstance(value, str):  # ECS: labels are flat keyword pairs
            errors.append(f"labels.{key} is not a keyword: {value!r:.60}")
    event = doc.get("event", {})
    for name in ("kind", "category", "type", "outcome"):
        values = event.get(name)
        for value in values if isinstance(values, list) else [values]:
            if value is not None and value not in ecs_schema.ALLOWED_VALUES[f"event.{name}"]:
                errors.append(f"event.{name}: {value!r} is not an ECS allowed value")
    categories, types = event.get("category") or [], event.get("type") or []
    for category in categories:
        expected = ecs_schema.EXPECTED_EVENT_TYPES.get(category, frozenset())
        if not expected & set(types):
            errors.append(f"event.category {category!r} with event.type {types}: ECS expects "
                          f"one of {sorted(expected)}")
    for type_ in types if categories else ():
        if not any(type_ in ecs_schema.EXPECTED_EVENT_TYPES.get(c, ()) for c in categories):
            errors.append(f"event.type {type_!r} is not expected with categories {categories}")
    return errors


def template_violations(doc: dict[str, Any]) -> list[str]:
    return mapping_errors(TEMPLATE, doc, strict=True, require_mapped=MAPPED_NAMESPACES)


def assert_conforms(doc: dict[str, Any]) -> None:
    problems = ecs_violations(doc) + template_violations(doc)
    assert not problems, f"{problems}\nin {doc}"


class _Identity:
    model, version, framework = "fraud", "3.1", "sklearn"


class Capture:
    """A ModelLog's shipper that keeps the spooled bytes of each event, parsed back."""

    def __init__(self, shipper: LogShipper) -> None:
        self._shipper = shipper
        self.log_inputs = self.log_outputs = True
        self.max_payload_chars = 200
        self.docs: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> int:
        self.docs.append(self.spooled({**self._shipper.base_fields, **event}))
        return len(self.docs)

    def spooled(self, event: dict[str, Any]) -> dict[str, Any]:
        data = self._shipper._serialize(event)  # the shipper's own serialiser and processors
        assert data is not None
        return strict_json(data)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    tmp = tmp_path_factory.mktemp("ecs")
    shipper = LogShipper(sink="file", path=tmp / "events.jsonl", spool_dir=tmp / "spool",
                         registry=CollectorRegistry(), service_name="svc", environment="prod")
    yield Capture(shipper)
    shipper.close(timeout=1)


def points(log: ModelLog, value: Any) -> list[Callable[[], Any]]:
    """Every logging point, with ``value`` in each of its value-bearing arguments."""
    try:
        raise ValueError("bad shape")
    except ValueError as caught:
        exc = caught
    return [
        lambda: log.request_received(request_id="r1", route="/predict", batch_size=value,
                                     inputs=value),
        lambda: log.input_rejected({"age": value, "income": "missing"}, request_id="r1",
                                   inputs=value),
        lambda: log.input_rejected([value, "x < 0", {"check": "y", "detail": value}]),
        lambda: log.prediction(value, prediction=value, score=value, inputs=value,
                               request_id="r1", batch_size=value),
        lambda: log.prediction(0.01, outcome="error", score=value),
        lambda: log.error(exc, request_id="r1"),
        lambda: log.error(message="plain"),
        lambda: log.model_loaded(duration_seconds=value, source=value),
        lambda: log.model_reloaded(previous_version=value, duration_seconds=value),
        lambda: log.model_rolled_back(from_version=value, reason=value),
        lambda: log.drift_detected(feature=value, statistic=value, value=value, threshold=value),
        lambda: log.feedback_received(request_id="r1", y_true=value, correct=value),
        lambda: log.edge_link_lost(device=value, reason=value),
        lambda: log.edge_link_restored(device=value, outage_seconds=value, backlog=value),
        lambda: log.edge_alert(device=value, alert={
            "status": value, "labels": {"alertname": value, "x": value}, "startsAt": value,
            "endsAt": value, "generatorURL": value}),
        lambda: log.edge_bundle_applied(version=value, sha256=value, source=value,
                                        signed=value, previous_version=value, device=value),
        lambda: log.edge_bundle_refused(reason=value, message=value, source=value,
                                        version=value, sha256=value, running_version=value,
                                        running_sha256=value, device=value),
    ]


ORDINARY = [0.25, 3, "text", True]
HOSTILE = [
    float("nan"), float("inf"), -float("inf"), 2**70, -(2**70), np.float32(0.5), np.int64(4),
    np.bool_(True), np.array([0.1, 0.9]), np.array([[0.1, 0.9], [0.8, 0.2]]),
    np.array([0.1, np.nan]), [0.1, 0.9], [[0.1, 0.9], [0.3, 0.7]], [[0.1], [0.2, 0.8]],
    [1, "a"], {"p": 0.5}, {"nested": {"deep": [1, 2]}}, "", "[0.1,0.9]", None, (1, 2),
    ["a", "b"], b"bytes", object(),
]


def _id(value: Any) -> str:
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text  # stable test ids


@pytest.mark.parametrize("value", ORDINARY + HOSTILE, ids=_id)
def test_every_logging_point_fits_ecs_and_the_template(capture: Capture, value: Any) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    for point in points(log, value):
        capture.docs.clear()
        point()  # a logging point never raises, whatever it is given
        [doc] = capture.docs
        assert_conforms(doc)


def test_request_received_is_a_web_access_event(capture: Capture) -> None:
    capture.docs.clear()
    ModelLog(_Identity(), capture).request_received(route="/predict")  # type: ignore[arg-type]
    event = capture.docs[0]["event"]
    assert event["category"] == ["web"] and event["type"] == ["access"]


def test_scores_are_doubles_or_text_never_a_string_in_a_double_field(capture: Capture) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.prediction(0.01, score=0.93)
    log.prediction(0.01, score=np.array([0.1, 0.9]))
    log.prediction(0.01, score=[[0.1, 0.9], [0.8, 0.2]])
    log.prediction(0.01, score="high")
    log.prediction(0.01, score=float("nan"))
    scalar, vector, batch, label, nan = (d["model"] for d in capture.docs)
    assert scalar["score"] == 0.93
    assert vector["score"] == [0.1, 0.9] and "score_shape" not in vector
    assert batch["score"] == [0.1, 0.9, 0.8, 0.2] and batch["score_shape"] == [2, 2]
    assert "score" not in label and label["score_text"] == "high"
    assert "score" not in nan and nan["score_text"] == "nan"


def test_non_finite_numbers_are_left_out_not_sent_as_nan(capture: Capture) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.prediction(float("nan"))
    log.drift_detected(feature="age", statistic="psi", value=float("inf"), threshold=0.2)
    prediction, drift = capture.docs
    assert "duration" not in prediction["event"] and "latency_seconds" not in prediction["model"]
    assert "value" not in drift["model"]["drift"] and drift["model"]["drift"]["threshold"] == 0.2
    assert "inf" in drift["message"]


def test_violations_are_objects_as_the_flattened_mapping_requires(capture: Capture) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.input_rejected(["age < 0", {"check": "income", "detail": "missing"}])
    log.input_rejected("one violation")
    listed, single = (d["model"] for d in capture.docs)
    assert listed["violations"] == [{"detail": "age < 0"},
                                    {"check": "income", "detail": "missing"}]
    assert single["violations"] == [{"detail": "one violation"}]
    assert listed["violation_count"] == 2 and single["violation_count"] == 1


def _record(extra: dict[str, Any] | None, exc: bool, logger: str = "app.module") -> Any:
    made: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            made.append(record)

    log = logging.getLogger(logger)
    log.propagate, handler = False, Keep()
    log.addHandler(handler)
    try:
        if exc:
            try:
                raise KeyError("missing")
            except KeyError:
                log.exception("failed %s", "here", extra=extra)
        else:
            log.warning("slow batch %d", 7, extra=extra)
    finally:
        log.removeHandler(handler)
    return made[0]


EXTRAS: list[dict[str, Any] | None] = [
    None,
    {"labels": {"team": "risk"}},
    {"labels": {"n": 5, "ratio": float("nan"), "nested": {"a": 1}}},
    {"user_id": "u1", "score": 0.5},
    {"tags": ["a", "b"]},
    {"event": {"reason": "batch too large", "duration": 12}},
    {"event": {"duration": "slow"}},            # an ECS long given a string
    {"url": "https://example.org/predict"},     # an ECS field set given a string
    {"host": {"name": {"nested": True}}},       # an ECS keyword given an object
    {"message2": np.float32(1.5)},
    {"tags": "single"},
    {"labels": "not-an-object"},
    {"service": {"name": "other"}},
    {"user": {"id": 5, "name": "ann"}},
]


@pytest.mark.parametrize("extra", EXTRAS, ids=repr)
@pytest.mark.parametrize("exc", [False, True], ids=["plain", "exception"])
def test_stdlib_records_fit_ecs_and_the_template(capture: Capture, extra: dict[str, Any] | None,
                                                 exc: bool) -> None:
    record = _record(extra, exc)
    doc = capture.spooled(from_log_record(record, dict(capture._shipper.base_fields)))
    assert_conforms(doc)
    assert doc["message"].startswith(("slow batch 7", "failed here"))
    if exc:
        assert doc["error"]["type"] == "KeyError" and "Traceback" in doc["error"]["stack_trace"]


def test_an_extra_that_does_not_fit_its_ecs_field_is_kept_as_a_label(capture: Capture) -> None:
    record = _record({"url": "https://example.org/predict", "event": {"duration": "slow"},
                      "labels": {"n": 5}}, exc=False)
    doc = capture.spooled(from_log_record(record, dict(capture._shipper.base_fields)))
    assert doc["labels"]["url"] == "https://example.org/predict"
    assert json.loads(doc["labels"]["event"]) == {"duration": "slow"}
    assert doc["labels"]["n"] == "5"
    assert doc["event"]["dataset"] == "modelmon.log"  # our event fields are kept


def test_extras_in_date_and_ip_fields_stay_where_ecs_puts_them(capture: Capture) -> None:
    """A string is the only JSON form of a date or an ip: valid ones stay in their
    ECS field, others go to labels."""
    record = _record({"client": {"ip": "10.1.2.3"}, "event": {"created": "2026-12-01T10:00:00Z"},
                      "source": {"ip": "not-an-ip"}}, exc=False)
    doc = capture.spooled(from_log_record(record, dict(capture._shipper.base_fields)))
    assert doc["client"]["ip"] == "10.1.2.3"
    assert doc["event"]["created"] == "2026-12-01T10:00:00Z"
    assert "ip" not in doc.get("source", {})
    assert json.loads(doc["labels"]["source"]) == {"ip": "not-an-ip"}


def test_logging_points_extra_fields_fit_ecs_too(capture: Capture) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.prediction(0.01, url="https://x", labels={"n": 1}, event="oops", team="risk")
    [doc] = capture.docs
    assert_conforms(doc)
    assert doc["event"]["action"] == "prediction" and doc["labels"]["event"] == "oops"
    assert doc["team"] == "risk"


def test_the_template_maps_ecs_fields_with_their_ecs_types() -> None:
    wrong = []
    for path, kind in mapped_types(TEMPLATE):
        head = path.split(".")[0]
        if head == "model":
            continue
        expected = ecs_schema.FIELD_TYPES.get(path)
        if expected is None and any(f.startswith(path + ".") for f in ecs_schema.FIELD_TYPES):
            expected = "object"  # an object on the way to ECS fields
        if expected != kind:
            wrong.append(f"{path}: template {kind}, ECS {expected}")
    assert not wrong, wrong
    assert "model" not in ecs_schema.TOP_LEVEL_TYPES  # our namespace never collides with ECS


def test_the_documents_name_the_ecs_version_the_schema_was_generated_from(
        capture: Capture) -> None:
    capture.docs.clear()
    ModelLog(_Identity(), capture).error(message="x")  # type: ignore[arg-type]
    assert capture.docs[0]["ecs"]["version"] == ecs_schema.ECS_VERSION


def test_the_schema_module_is_what_the_generator_writes() -> None:
    from modelmon.exporters.logs import ecs_schema_gen

    flat = {
        "@timestamp": {"type": "date"},
        "event.kind": {"type": "keyword", "allowed_values": [{"name": "event"}]},
        "event.category": {"type": "keyword", "allowed_values": [
            {"name": "web", "expected_event_types": ["info", "access"]}]},
        "event.type": {"type": "keyword", "allowed_values": [{"name": "access"}]},
        "event.outcome": {"type": "keyword", "allowed_values": [{"name": "success"}]},
        "user.id": {"type": "keyword"},
    }
    text = ecs_schema_gen.render(flat, "8.11.0", "abc")
    namespace: dict[str, Any] = {}
    exec(compile(text, "ecs_schema.py", "exec"), namespace)
    assert namespace["FIELD_TYPES"]["user.id"] == "keyword"
    assert namespace["TOP_LEVEL_TYPES"] == {"@timestamp": "date", "event": "object",
                                            "user": "object"}
    assert namespace["EXPECTED_EVENT_TYPES"] == {"web": frozenset({"access", "info"})}
    source = Path(ecs_schema.__file__).read_text()
    assert f'ECS_COMMIT = "{ecs_schema.ECS_COMMIT}"' in source and "do not edit" in source


# -- arbitrary inputs ---------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12,
)
_arrays = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6).map(np.array),
    st.integers(1, 3).flatmap(lambda n: st.lists(
        st.lists(st.floats(-1, 1), min_size=n, max_size=n), min_size=1, max_size=3)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(_values, _arrays))
def test_any_value_given_to_any_logging_point_ships_a_conforming_document(
        capture: Capture, value: Any) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    for point in points(log, value):
        capture.docs.clear()
        point()
        [doc] = capture.docs
        assert_conforms(doc)
        score = doc["model"].get("score")
        for number in score if isinstance(score, list) else [score] if score is not None else []:
            assert isinstance(number, float | int) and math.isfinite(number)


_ecs_names = st.sampled_from(sorted(
    {*ecs_schema.TOP_LEVEL_TYPES, *list(ecs_schema.FIELD_TYPES)[::7], "model", "model.score",
     "labels.team", "message.x", "event.duration.x", "custom", "custom.field"}))


@settings(max_examples=150, deadline=None)
@given(extra=st.dictionaries(_ecs_names, _values, max_size=4),
       as_fields=st.dictionaries(_ecs_names, _values, max_size=3))
def test_any_extra_fields_under_any_names_ship_a_document_elasticsearch_accepts(
        capture: Capture, extra: dict[str, Any], as_fields: dict[str, Any]) -> None:
    reserved = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
    record = _record({k: v for k, v in extra.items() if k not in reserved}, exc=False)
    doc = capture.spooled(from_log_record(record, dict(capture._shipper.base_fields)))
    capture.docs.clear()
    ModelLog(_Identity(), capture).prediction(0.01, **as_fields)  # type: ignore[arg-type]
    for shipped in (doc, *capture.docs):
        # Names are the caller's: a custom field may be dynamic, but nothing may be refused.
        problems = mapping_errors(ECS, shipped, strict=True) + mapping_errors(
            TEMPLATE, shipped, strict=True)
        labels = shipped.get("labels", {})
        problems += [f"labels.{k}" for k, v in labels.items() if not isinstance(v, str)]
        assert not problems, f"{problems}\nin {shipped}"


def test_the_redactor_refuses_to_hash_a_field_a_string_does_not_fit() -> None:
    from modelmon.exporters.logs.redaction import Redactor

    for name in ("process.pid", "model.latency_seconds", "user", "event.duration"):
        with pytest.raises(ValueError, match=rf"logs.redact.hash_fields: {name} is a"):
            Redactor(hash_fields=[name])
    redactor = Redactor(hash_fields=["user.id", "model.name", "custom.id"])
    doc = redactor({"user": {"id": "jane"}, "model": {"name": "m"}, "custom": {"id": 5}})
    assert doc["user"]["id"].startswith("sha256:")
    assert not mapping_errors(ECS, doc, strict=True) + mapping_errors(TEMPLATE, doc, strict=True)


def test_the_committed_schema_matches_the_ecs_release_it_names() -> None:
    # Needs a clone of github.com/elastic/ecs: ECS_GIT_DIR=<clone>/.git pytest ...
    import os

    git_dir = os.environ.get("ECS_GIT_DIR")
    if not git_dir:
        pytest.skip("set ECS_GIT_DIR to a clone of elastic/ecs to check ecs_schema.py")
    from modelmon.exporters.logs import ecs_schema_gen

    assert ecs_schema_gen.main(["--git-dir", git_dir, "--ref", f"v{ecs_schema.ECS_VERSION}",
                                "--check"]) == 0


def test_the_fields_the_logs_dashboard_queries_are_mapped_for_it() -> None:
    from modelmon.dashboards import logs_elasticsearch as dash

    types = dict(mapped_types(TEMPLATE))
    assert types[dash.TIME_FIELD] == "date"
    for field in (dash.MODEL_FIELD, dash.VERSION_FIELD, dash.DEVICE_FIELD, dash.LEVEL_FIELD):
        assert types[field] == "keyword", field  # terms variables aggregate on them
    assert all(column in types for column in dash.TABLE_COLUMNS)


def test_violations_stay_within_what_the_flattened_field_indexes(capture: Capture) -> None:
    # FlattenedFieldParser refuses a \0 in a key, depth beyond 20 and a value
    # beyond Lucene's 32766-byte term: one long detail must not lose the event.
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(30):
        deep = {"d": deep}
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.input_rejected({"a\0b": "x" * 40_000, "deep": deep, "emoji": "\U0001f600" * 9000})
    log.input_rejected([{"check": "c\0", "detail": ["y" * 40_000]}])
    for doc in capture.docs:
        assert_conforms(doc)


def test_field_names_elasticsearch_refuses_never_leave(capture: Capture) -> None:
    log = ModelLog(_Identity(), capture)  # type: ignore[arg-type]
    capture.docs.clear()
    log.prediction(0.01, **{"": 1, " ": "blank", "a..b": 2, ".x": 3, "custom": {"": 4, "ok": 5},
                            "labels": {"": "e", "a.b": "dotted"}})
    [doc] = capture.docs
    assert_conforms(doc)
    assert "custom" not in doc and json.loads(doc["labels"]["custom"]) == {"": 4, "ok": 5}
    assert doc["labels"]["a_b"] == "dotted"
