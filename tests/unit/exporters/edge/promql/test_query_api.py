"""The agent's /api/v1/query and /api/v1/query_range: Prometheus's parameters,
JSON shapes, value formatting and error types."""

from __future__ import annotations

import io
import json
import threading
from typing import Any
from urllib.parse import urlencode

from modelmon.exporters.edge.promql import MemoryStorage
from modelmon.exporters.edge.rules.query_api import QueryAPI, format_value


def call(api: QueryAPI, path: str, params: dict[str, str], method: str = "GET"
         ) -> tuple[str, dict[str, Any]]:
    status: list[str] = []
    body = urlencode(params).encode()
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method,
               "QUERY_STRING": "" if method == "POST" else body.decode(),
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    out = b"".join(api(environ, lambda s, headers: status.append(s)))
    return status[0], json.loads(out)


def make_api() -> QueryAPI:
    storage = MemoryStorage()
    for i in range(30):
        storage.append([("__name__", "reqs_total"), ("job", "cam")], i * 10_000, float(i * 5))
    return QueryAPI(storage, threading.Lock(), lambda env, start: [b"metrics"])


def test_instant_vector_and_scalar_shapes() -> None:
    api = make_api()
    status, body = call(api, "/api/v1/query", {"query": "rate(reqs_total[1m])", "time": "200"})
    assert status.startswith("200")
    assert body == {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "cam"}, "value": [200.0, "0.5"]}]}}
    _, body = call(api, "/api/v1/query", {"query": "scalar(reqs_total) * 2", "time": "100.5"},
                   method="POST")
    assert body["data"] == {"resultType": "scalar", "result": [100.5, "100"]}


def test_range_query_is_a_matrix_of_steps() -> None:
    _, body = call(make_api(), "/api/v1/query_range",
                   {"query": "reqs_total", "start": "0", "end": "30", "step": "15"})
    assert body["data"] == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "reqs_total", "job": "cam"},
         "values": [[0.0, "0"], [15.0, "5"], [30.0, "15"]]}]}


def test_errors_have_prometheus_error_types() -> None:
    api = make_api()
    status, body = call(api, "/api/v1/query", {"query": "sum(reqs_total"})
    assert status.startswith("400") and body["errorType"] == "bad_data"
    two = 'reqs_total or label_replace(reqs_total, "job", "mic", "job", ".*")'
    status, body = call(api, "/api/v1/query", {"query": f"vector(1) + on() ({two})",
                                               "time": "100"})
    assert status.startswith("422") and body["errorType"] == "execution"
    assert "many-to-many matching not allowed" in body["error"]
    status, body = call(api, "/api/v1/query_range",
                        {"query": "reqs_total", "start": "10", "end": "0", "step": "1"})
    assert status.startswith("400") and "end timestamp must not be before" in body["error"]
    # Anything else is the agent's /metrics.
    assert b"".join(api({"PATH_INFO": "/metrics"}, lambda *a: None)) == b"metrics"


def test_values_are_formatted_as_prometheus_does() -> None:
    assert [format_value(v) for v in (1.0, 0.1, 1e-7, 1e21, -2.5, float("nan"),
                                      float("inf"))] == \
        ["1", "0.1", "0.0000001", "1000000000000000000000", "-2.5", "NaN", "+Inf"]
