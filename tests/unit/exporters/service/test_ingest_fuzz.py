"""Fuzzing POST /ingest (issue 12, "Done when"): arbitrary JSON, unicode and sizes.

Whatever arrives, the answer is a 2xx, or a 4xx JSON body whose every error
names the field; a refused request changes no metric (all-or-nothing); and
/metrics stays valid to prometheus_client's text parser and the strict
OpenMetrics parser.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modelmon import Profile
from modelmon.catalog import CATALOG
from modelmon.config import serve_config_from_mapping
from modelmon.exporters.quality.bin_counters import flush_all as flush_bin_counters
from modelmon.exporters.service.app import create_app
from support.scrape_check import scrape, scrape_quick

MAX_BODY = 16 * 1024
# Counted by design on a refused request, or updated by the feedback worker's
# thread after the request that caused them.
_MAY_CHANGE = {"ingest_events_total", "label_overflow_total", "label_values_replaced_total",
               "series_budget_exceeded_total"}
_WATCHED = {
    k.full_name().removesuffix("_total") for k in CATALOG
    if k.type in ("counter", "histogram") and k.group != "feedback" and k.name not in _MAY_CHANGE
}
# "field: message"; in a batch the field is events[i].<field> or body.
_ERROR = re.compile(
    r"""^(body|Content-Type|(events\[\d+\]\.?)?([A-Za-z0-9_.\[\]-]+|'[^']*'|"[^"]*")?): \S"""
)


@functools.cache
def _app(tmp: str) -> Any:
    rng = np.random.default_rng(0)
    rows = [{"amount": float(a), "country": str(c)}
            for a, c in zip(rng.normal(0, 1, 200), rng.choice(["DE", "FR"], 200), strict=True)]
    Profile.from_data(rows, model="fraud").save(f"{tmp}/fraud.json")
    config = serve_config_from_mapping({
        "max_series": 600,
        "ingest": {"max_body_bytes": MAX_BODY, "max_events": 50},
        "quality": {"models": {"fraud": {"profile": f"{tmp}/fraud.json",
                                         "options": {"feedback_db": ":memory:"}}}},
    })
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    return create_app(config, registry=registry), registry


def _state(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in registry.collect():
        if family.name not in _WATCHED:
            continue
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- strategies ------------------------------------------------------------------------

_text = st.one_of(
    st.text(max_size=12),  # any code point, lone surrogates included
    st.sampled_from(["m", "fraud", "v1", "a\x00b", "\u202e", "\ud800", "", "__other__",
                     "DE", "FR", "x" * 201]),
    st.text(min_size=150, max_size=400),
)
_number = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 10**400, -(10**400), 0.5, 1e308, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_scalar = st.one_of(st.none(), st.booleans(), _number, _text)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)
_FIELDS = ["type", "model", "version", "latency_seconds", "outcome", "batch_size", "exception",
           "request_bytes", "response_bytes", "framework", "timestamp", "prediction", "score",
           "scores", "request_id", "features", "label"]
_plausible = {
    "type": st.sampled_from(["inference", "prediction", "feedback"]) | _text,
    "model": st.sampled_from(["m", "fraud"]) | _text,
    "version": st.sampled_from(["1", "2"]) | _text,
    "latency_seconds": _number,
    "outcome": st.sampled_from(["success", "error", "rejected"]) | _scalar,
    "batch_size": _number,
    "exception": _text,
    "request_bytes": _number,
    "response_bytes": _number,
    "framework": _text,
    "timestamp": _number,
    "prediction": _scalar,
    "score": _number,
    "scores": st.lists(_number, max_size=3) | _json,
    "request_id": _text,
    "features": st.dictionaries(st.sampled_from(["amount", "country"]) | _text, _scalar,
                                max_size=3) | _json,
    "label": _scalar,
}


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.lists(st.sampled_from(_FIELDS), unique=True, max_size=8))
    event = {f: draw(_plausible[f]) for f in fields}
    if draw(st.booleans()):
        event.update(draw(st.dictionaries(_text, _json, max_size=2)))
    return event


_printable = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
                     min_size=1, max_size=30)
_seconds = st.floats(0, 1e6) | st.integers(0, 10**6)
_valid_event = st.one_of(
    st.fixed_dictionaries({"model": _printable, "latency_seconds": _seconds}, optional={
        "version": _printable, "outcome": st.sampled_from(["success", "error", "rejected"]),
        "exception": _printable, "batch_size": st.integers(1, 2**53),
        "request_bytes": st.integers(0, 2**53), "framework": _printable,
        "timestamp": st.floats(0, 2e9)}),
    st.fixed_dictionaries({"type": st.just("prediction"), "model": st.sampled_from(["fraud", "m"]),
                           "prediction": _printable | st.integers(-5, 5) | st.booleans()},
                          optional={"score": st.floats(0, 1), "request_id": _printable,
                                    "features": st.fixed_dictionaries({}, optional={
                                        "amount": st.floats(-1e9, 1e9) | st.none(),
                                        "country": _printable})}),
    st.fixed_dictionaries({"type": st.just("feedback"), "model": st.sampled_from(["fraud", "m"]),
                           "request_id": _printable, "label": _printable | st.integers(-5, 5)}),
)


@st.composite
def _mutated_event(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with, sometimes, one field set to something hostile."""
    event = draw(_valid_event)
    if draw(st.integers(0, 3)) == 0:
        event[draw(st.sampled_from(_FIELDS) | _text)] = draw(_json)
    return event


_some_events = st.lists(_mutated_event(), min_size=1, max_size=8)
_body_value = st.one_of(_mutated_event(), _some_events, _some_events, _event(),
                        st.lists(_event(), max_size=6), _json,
                        st.lists(_mutated_event(), min_size=40, max_size=60))


@st.composite
def _raw_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "json", "json", "truncated", "bytes", "deep", "big"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return b"[" * draw(st.integers(1, 200_000))
    if kind == "big":
        return b'[{"model": "m", "latency_seconds": 1}' + b", 1" * draw(
            st.integers(MAX_BODY // 3 - 20, MAX_BODY)) + b"]"
    text = json.dumps(draw(_body_value))  # ensure_ascii: surrogates travel as \\ud800
    if kind == "truncated":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text.encode()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(body=_raw_body(), chunked=st.booleans())
def test_any_body_gets_a_clean_answer_and_metrics_stay_valid(tmp_path_factory, body, chunked):
    app, registry = _app(str(tmp_path_factory.getbasetemp()))
    client = app.test_client()
    # The fleet bin counters are counted by a daemon thread every second: count what
    # is pending now and again after the request, so only the request's rows differ.
    flush_bin_counters()
    before = _state(registry)
    if chunked:
        import io

        answer = client.post("/ingest", input_stream=io.BytesIO(body),
                             content_type="application/json",
                             headers={"Transfer-Encoding": "chunked"},
                             environ_overrides={"wsgi.input_terminated": True})
    else:
        answer = client.post("/ingest", data=body, content_type="application/json")
    status = answer.status_code
    event(f"HTTP {status}")
    assert 200 <= status < 300 or 400 <= status < 500, (status, answer.data[:300])
    assert answer.mimetype == "application/json", answer.data[:300]
    reply = json.loads(answer.data.decode("utf-8"))
    if status < 300:
        assert reply["status"] == "ok"
        assert len(body) <= MAX_BODY
        sent = json.loads(body)
        assert reply["accepted"] == (len(sent) if isinstance(sent, list) else 1)
    else:
        assert reply["status"] == "error" and reply["errors"], reply
        for error in reply["errors"]:
            error.encode("utf-8")  # no lone surrogate travels back
            assert _ERROR.match(error), error
        flush_bin_counters()  # what the request added, counted (all-or-nothing)
        assert _state(registry) == before, "a refused request changed metrics"
        if len(body) > MAX_BODY:
            assert status == 413
    # Strict parsers when series may have been added; a refused request only
    # counts ingest_events_total{event_type=<known type or "unknown">}.
    if status < 300:
        scrape(client)
    else:
        scrape_quick(client)
