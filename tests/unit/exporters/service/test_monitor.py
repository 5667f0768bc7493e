"""ModelMonitor.track(): what a model server relies on, read back from the registry."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from modelmon import InferenceRejected, ModelMonitor
from modelmon.labels import OTHER

L = {"model": "fraud", "version": "3.1.0"}


def value(registry, name, **labels):
    return registry.get_sample_value(name, {**L, **labels})


@pytest.fixture
def mon(registry):
    return ModelMonitor("fraud", version="3.1.0", framework="sklearn", registry=registry)


def test_decorator_counts_times_and_sizes_batches(mon, registry):
    @mon.track()
    def predict(X):
        assert value(registry, "modelmon_inference_in_flight") == 1
        return [0] * len(X)

    predict(np.zeros((7, 3)))
    predict([1, 2])
    assert value(registry, "modelmon_inference_requests_total", outcome="success") == 2
    assert value(registry, "modelmon_inference_duration_seconds_count") == 2
    assert value(registry, "modelmon_inference_in_flight") == 0
    assert value(registry, "modelmon_inference_batch_size_sum") == 9
    assert value(registry, "modelmon_inference_batch_size_bucket", le="8.0") == 2


def test_bare_decorator_and_methods_take_the_batch_after_self(mon, registry):
    class Model:
        @mon.track
        def predict(self, X):
            return X

    assert Model().predict([1, 2, 3]) == [1, 2, 3]
    assert value(registry, "modelmon_inference_batch_size_sum") == 3


def test_a_string_input_is_one_item_not_a_batch_of_characters(mon, registry):
    mon.track()(lambda text: text)("hello")
    assert value(registry, "modelmon_inference_batch_size_count") == 0
    assert value(registry, "modelmon_inference_requests_total", outcome="success") == 1


def test_context_manager_with_explicit_batch_and_payload(mon, registry):
    with mon.track(batch_size=32, request_bytes=2048) as t:
        t.response_bytes = 512
    assert value(registry, "modelmon_inference_batch_size_sum") == 32
    assert value(registry, "modelmon_payload_bytes_sum", direction="request") == 2048
    assert value(registry, "modelmon_payload_bytes_sum", direction="response") == 512


def test_exceptions_are_errors_counted_by_type_and_reraised(mon, registry):
    @mon.track()
    def predict(X):
        raise MemoryError("cuda oom")

    with pytest.raises(MemoryError):
        predict([1])
    assert value(registry, "modelmon_inference_requests_total", outcome="error") == 1
    assert value(registry, "modelmon_inference_exceptions_total", exception="MemoryError") == 1
    assert value(registry, "modelmon_inference_in_flight") == 0


def test_rejections(registry):
    mon = ModelMonitor("fraud", version="3.1.0", registry=registry,
                       rejected_exceptions=(ValueError,))
    with pytest.raises(InferenceRejected):
        with mon.track():
            raise InferenceRejected("bad input")
    with pytest.raises(ValueError):
        with mon.track():
            raise ValueError("schema")
    with mon.track() as t:
        t.reject()
    assert value(registry, "modelmon_inference_requests_total", outcome="rejected") == 3
    assert value(registry, "modelmon_inference_requests_total", outcome="error") == 0


def test_async_functions(mon, registry):
    @mon.track()
    async def predict(X):
        await asyncio.sleep(0)
        return len(X)

    assert asyncio.run(predict([1, 2, 3, 4])) == 4
    assert value(registry, "modelmon_inference_requests_total", outcome="success") == 1
    assert value(registry, "modelmon_inference_batch_size_sum") == 4


def test_exception_label_cardinality_is_capped(registry):
    mon = ModelMonitor("fraud", version="3.1.0", registry=registry, max_label_values=2)
    for i in range(5):
        exc_type = type(f"Err{i}", (Exception,), {})
        with pytest.raises(exc_type):
            with mon.track():
                raise exc_type()
    assert value(registry, "modelmon_inference_exceptions_total", exception="Err0") == 1
    assert value(registry, "modelmon_inference_exceptions_total", exception=OTHER) == 3
    assert registry.get_sample_value(
        "modelmon_label_overflow_total",
        {"metric": "inference_exceptions_total", "label": "exception"},
    ) == 3


def test_info_and_model_load(mon, registry):
    assert registry.get_sample_value("modelmon_model_info", {
        **L, "framework": "sklearn", "framework_version": "", "task": ""}) == 1
    with mon.loading():
        pass
    assert value(registry, "modelmon_model_load_duration_seconds") >= 0
    mon.record_model_load(2.5, timestamp=1700000000)
    assert value(registry, "modelmon_model_load_duration_seconds") == 2.5
    assert value(registry, "modelmon_model_last_load_timestamp_seconds") == 1700000000


def test_two_models_share_a_registry(registry):
    a = ModelMonitor("a", registry=registry)
    b = ModelMonitor("b", version="2", registry=registry)
    a.observe_inference(0.1)
    b.observe_inference(0.2, "error", exception="Timeout", batch_size=3)
    get = registry.get_sample_value
    assert get("modelmon_inference_requests_total",
               {"model": "a", "version": "unknown", "outcome": "success"}) == 1
    assert get("modelmon_inference_requests_total",
               {"model": "b", "version": "2", "outcome": "error"}) == 1
    assert get("modelmon_inference_exceptions_total",
               {"model": "b", "version": "2", "exception": "Timeout"}) == 1


def test_configurable_prefix_and_buckets(registry):
    mon = ModelMonitor("m", registry=registry, prefix="acme_",
                       buckets={"inference_duration_seconds": [0.5, 1.0]})
    mon.observe_inference(0.7)
    assert registry.get_sample_value(
        "acme_inference_duration_seconds_bucket", {"model": "m", "version": "unknown", "le": "1.0"}
    ) == 1
    with pytest.raises(ValueError, match="buckets.inference_duration_seconds"):
        ModelMonitor("n", registry=registry, prefix="acme_",
                     buckets={"inference_duration_seconds": [2.0]})


@pytest.mark.parametrize("field,kwargs", [
    ("model", {"model": ""}), ("version", {"model": "m", "version": None}),
])
def test_bad_identity_names_the_field(registry, field, kwargs):
    with pytest.raises(ValueError, match=field):
        ModelMonitor(**kwargs, registry=registry)


def test_observe_inference_rejects_unknown_outcome(mon):
    with pytest.raises(ValueError, match="outcome"):
        mon.observe_inference(0.1, "maybe")


def test_cancelled_calls_are_not_errors(mon, registry):
    @mon.track()
    async def predict(X):
        await asyncio.sleep(10)

    async def cancel_it():
        task = asyncio.ensure_future(predict([1]))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    for outcome in ("success", "error", "rejected"):
        assert value(registry, "modelmon_inference_requests_total", outcome=outcome) == 0
    assert value(registry, "modelmon_inference_in_flight") == 0
    assert value(registry, "modelmon_inference_duration_seconds_count") == 0


def test_a_label_cap_applies_even_when_another_component_made_the_metric_set(registry):
    from modelmon.metrics import metric_set

    metric_set(registry)  # e.g. a log shipper: no preference for the cap
    mon = ModelMonitor("fraud", version="3.1.0", registry=registry, max_label_values=1)
    for exc_type in (KeyError, ValueError):
        with pytest.raises(exc_type):
            with mon.track():
                raise exc_type()
    assert value(registry, "modelmon_inference_exceptions_total", exception=OTHER) == 1
    with pytest.raises(ValueError, match="max_label_values"):
        ModelMonitor("other", registry=registry, max_label_values=5)
