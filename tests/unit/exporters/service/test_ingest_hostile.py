"""POST /ingest under hostile input (issue 12 findings 1 and 5): label values no
consumer accepts, numbers no float holds, nesting no parser survives, bodies
larger than the limit. Every answer is a 2xx or a JSON 4xx naming the field,
a refused request records nothing, and /metrics stays valid."""

from __future__ import annotations

import io
import json

import pytest

from modelmon.config import ServeConfig, serve_config_from_mapping
from modelmon.exporters.quality import Profile
from modelmon.exporters.service.app import create_app
from support.scrape_check import scrape

SURROGATE = "\ud800"
# NUL, a C1 control, right-to-left override, a bidi isolate, a zero-width
# space, the line separator, and a lone surrogate.
BAD_TEXT = ["a\x00b", "a\x85b", "a\u202eb", "a\u2066b", "a\u200bb", "a\u2028b", SURROGATE]


def make_client(registry, **config):
    cfg = serve_config_from_mapping(config) if config else ServeConfig()
    return create_app(cfg, registry=registry).test_client()


def quality_client(registry, tmp_path):
    profile = Profile.from_data(
        [{"amount": float(i), "country": "DE" if i % 2 else "FR"} for i in range(50)],
        model="fraud")
    profile.save(tmp_path / "p.json")
    return make_client(registry, quality={"models": {"fraud": {
        "profile": str(tmp_path / "p.json"), "options": {"feedback_db": ":memory:"}}}})


def post(client, body):
    """POST ``body`` (any JSON value, surrogates included) as the raw JSON a client sends."""
    return client.post("/ingest", data=json.dumps(body), content_type="application/json")


def assert_refused(answer, field: str) -> list[str]:
    """A JSON 4xx whose errors name ``field``; the body is valid UTF-8 JSON without surrogates."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.data[:300])
    assert answer.mimetype == "application/json"
    errors = json.loads(answer.data.decode("utf-8"))["errors"]
    for error in errors:
        error.encode("utf-8")  # a lone surrogate in the message would raise here
    assert any(e.startswith(field) for e in errors), errors
    return errors


def sample_total(registry, prefix: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples
               if s.name.startswith(prefix) and not s.name.endswith("_created"))


INFERENCE = {"model": "m", "version": "1", "latency_seconds": 0.1}


# -- finding 1: label values --------------------------------------------------------

@pytest.mark.parametrize("text", BAD_TEXT, ids=repr)
@pytest.mark.parametrize("event,field", [
    ({**INFERENCE, "model": "{}"}, "events[1].model"),
    ({**INFERENCE, "version": "{}"}, "events[1].version"),
    ({**INFERENCE, "outcome": "error", "exception": "{}"}, "events[1].exception"),
    ({**INFERENCE, "framework": "{}"}, "events[1].framework"),
    ({**INFERENCE, "type": "{}"}, "events[1].type"),
    ({**INFERENCE, "{}": 1}, "events[1]."),  # an unknown field's name
])
def test_text_no_consumer_takes_is_refused_naming_the_field_and_metrics_stay_valid(
        registry, text, event, field):
    client = make_client(registry)
    event = {k.format(text) if k == "{}" else k: v.format(text) if isinstance(v, str) else v
             for k, v in event.items()}
    assert_refused(post(client, [INFERENCE, event]), field)
    assert sample_total(registry, "modelmon_inference_requests") == 0  # all-or-nothing
    assert registry.get_sample_value("modelmon_ingest_events_total",
                                     {"event_type": "inference", "outcome": "invalid"}) in (1, 2)
    scrape(client)


@pytest.mark.parametrize("text", BAD_TEXT, ids=repr)
@pytest.mark.parametrize("event,field", [
    ({"type": "prediction", "model": "fraud", "prediction": "{}"}, "prediction"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "request_id": "{}"},
     "request_id"),
    ({"type": "prediction", "model": "fraud", "prediction": "a",
      "features": {"country": "{}"}}, "features.country"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "features": {"{}": 1}},
     "features"),
    ({"type": "feedback", "model": "fraud", "request_id": "r", "label": "{}"}, "label"),
    ({"type": "feedback", "model": "{}", "request_id": "r", "label": "a"}, "model"),
])
def test_quality_events_refuse_such_text_too(registry, tmp_path, text, event, field):
    client = quality_client(registry, tmp_path)

    def fill(value):
        if isinstance(value, dict):
            return {k.format(text) if k == "{}" else k: fill(v) for k, v in value.items()}
        return value.format(text) if isinstance(value, str) else value

    assert_refused(post(client, fill(event)), field)
    assert sample_total(registry, "modelmon_predictions") == 0
    scrape(client)


def test_a_refused_surrogate_type_does_not_become_a_label(registry):
    client = make_client(registry)
    assert_refused(post(client, {**INFERENCE, "type": SURROGATE}), "type")
    assert registry.get_sample_value("modelmon_ingest_events_total",
                                     {"event_type": "unknown", "outcome": "invalid"}) == 1
    scrape(client)


def test_printable_unicode_is_accepted(registry):
    client = make_client(registry)
    answer = post(client, {**INFERENCE, "model": "détecteur-欺诈-🙂", "version": "v\u00a01"})
    assert answer.status_code == 200, answer.json
    assert registry.get_sample_value("modelmon_inference_requests_total", {
        "model": "détecteur-欺诈-🙂", "version": "v\u00a01", "outcome": "success"}) == 1
    scrape(client)


# -- finding 5: numbers, nesting, sizes ------------------------------------------------

HUGE = 10**400


@pytest.mark.parametrize("event,field", [
    ({**INFERENCE, "latency_seconds": HUGE}, "events[2].latency_seconds"),
    ({**INFERENCE, "batch_size": HUGE}, "events[2].batch_size"),
    ({**INFERENCE, "request_bytes": HUGE}, "events[2].request_bytes"),
    ({**INFERENCE, "response_bytes": HUGE}, "events[2].response_bytes"),
    ({**INFERENCE, "timestamp": HUGE}, "events[2].timestamp"),
    ({**INFERENCE, "timestamp": -HUGE}, "events[2].timestamp"),
])
def test_huge_integers_are_refused_and_nothing_is_recorded(registry, event, field):
    client = make_client(registry)
    assert_refused(post(client, [INFERENCE, INFERENCE, event]), field)
    assert sample_total(registry, "modelmon_inference_requests") == 0
    scrape(client)


@pytest.mark.parametrize("event,field", [
    ({"type": "prediction", "model": "fraud", "prediction": HUGE}, "events[1].prediction"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "score": HUGE},
     "events[1].score"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "scores": [HUGE, 0.1]},
     "events[1].scores[0]"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "features": {"amount": HUGE}},
     "events[1].features.amount"),
    ({"type": "prediction", "model": "fraud", "prediction": "a",
      "features": {"amount": [[1]]}}, "events[1].features.amount"),
    ({"type": "prediction", "model": "fraud", "prediction": "a", "timestamp": HUGE},
     "events[1].timestamp"),
    ({"type": "feedback", "model": "fraud", "request_id": "r", "label": HUGE}, "events[1].label"),
])
def test_huge_integers_in_quality_events_are_refused(registry, tmp_path, event, field):
    client = quality_client(registry, tmp_path)
    ok = {"type": "prediction", "model": "fraud", "prediction": "a", "request_id": "r"}
    assert_refused(post(client, [ok, event]), field)
    assert sample_total(registry, "modelmon_predictions") == 0
    scrape(client)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_literals_are_refused(registry, literal):
    client = make_client(registry)
    body = '{"model": "m", "latency_seconds": ' + literal + '}'
    assert_refused(client.post("/ingest", data=body, content_type="application/json"), "body")
    assert sample_total(registry, "modelmon_inference_requests") == 0


def test_deep_nesting_is_a_json_400(registry):
    client = make_client(registry)
    answer = client.post("/ingest", data="[" * 100_000, content_type="application/json")
    assert_refused(answer, "body")
    scrape(client)


def test_bytes_that_are_not_utf8_are_a_json_400(registry):
    client = make_client(registry)
    answer = client.post("/ingest", data=b'{"model": "\xff", "latency_seconds": 1}',
                         content_type="application/json")
    assert_refused(answer, "body")


def test_a_chunked_body_over_the_limit_is_413(registry):
    client = make_client(registry, ingest={"max_body_bytes": "64KiB"})
    body = json.dumps([INFERENCE] * 20_000).encode()  # ~1 MB, no Content-Length
    answer = client.post(
        "/ingest", input_stream=io.BytesIO(body), content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_refused(answer, "body")
    assert answer.status_code == 413
    assert sample_total(registry, "modelmon_inference_requests") == 0


def test_a_chunked_body_under_the_limit_is_read_whole(registry):
    client = make_client(registry)
    body = json.dumps([INFERENCE] * 3000).encode()  # several read chunks
    answer = client.post(
        "/ingest", input_stream=io.BytesIO(body), content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["accepted"] == 3000


@pytest.mark.parametrize("version", ["..", "../../outside", "a/../../outside", "/abs"])
def test_a_version_cannot_place_the_feedback_store_outside_its_folder(registry, tmp_path, version):
    """The version of an /ingest event is formatted into quality.options.feedback_db."""
    base = tmp_path / "conf" / "stores"
    base.mkdir(parents=True)
    config = serve_config_from_mapping({"quality": {"models": {"fraud": {
        "options": {"feedback_db": "stores/{version}/feedback.sqlite"}}}}},
        base_dir=tmp_path / "conf")
    client = create_app(config, registry=registry).test_client()
    answer = post(client, {"type": "prediction", "model": "fraud", "version": version,
                           "prediction": "a", "request_id": "r1"})
    assert answer.status_code == 200, answer.json
    created = [p for p in tmp_path.rglob("*.sqlite*")]
    assert created and all(base in p.parents for p in created), created
