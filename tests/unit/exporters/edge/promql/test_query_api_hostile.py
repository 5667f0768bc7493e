"""The device's query API under hostile requests: whatever the client sends, the
answer is Prometheus's JSON (success, or an error with its type), never a 500."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelmon.exporters.edge.promql import MemoryStorage
from modelmon.exporters.edge.rules.query_api import MAX_FORM_BYTES, QueryAPI


def make_api() -> QueryAPI:
    storage = MemoryStorage()
    for i in range(10):
        storage.append([("__name__", "reqs_total"), ("job", "cam")], i * 10_000, float(i))
    return QueryAPI(storage, threading.Lock(), lambda env, start: [b"metrics"])


def raw_call(api: QueryAPI, path: str, query_string: str, body: bytes = b"",
             content_length: str | None = None, method: str = "GET") -> tuple[str, dict[str, Any]]:
    status: list[str] = []
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": query_string,
               "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
               "wsgi.input": io.BytesIO(body)}
    out = b"".join(api(environ, lambda s, headers: status.append(s)))
    return status[0], json.loads(out)


def assert_prometheus_answer(status: str, body: dict[str, Any]) -> None:
    code = int(status.split()[0])
    assert code in (200, 400, 422), status
    if code == 200:
        assert body["status"] == "success"
    else:
        assert body["status"] == "error" and body["errorType"] in ("bad_data", "execution")
        assert body["error"]


def test_malformed_form_bodies_are_bad_data() -> None:
    api = make_api()
    for length, body in [("abc", b"query=up"), ("-5", b""), (str(MAX_FORM_BYTES + 1), b"q"),
                         ("4", b"\xff\xfe\xfd\xfc")]:
        status, answer = raw_call(api, "/api/v1/query", "", body, length, method="POST")
        assert status.startswith("400"), (length, status)
        assert answer["errorType"] == "bad_data"


_text = st.text(max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=_text, time=_text, start=_text, end=_text, step=_text,
       path=st.sampled_from(["/api/v1/query", "/api/v1/query_range"]))
@example(query="reqs_total", time="nan", start="0", end="inf", step="1e-300",
         path="/api/v1/query_range")
@example(query="rate(reqs_total[1y])", time="1e400", start="", end="", step="",
         path="/api/v1/query")
@example(query='{__name__=~"(a+)+$"}', time="-1e18", start="0", end="1", step="0.001",
         path="/api/v1/query_range")
@example(query="reqs_total\x00", time="\ud800", start="0", end="1", step="1",
         path="/api/v1/query")
def test_any_parameters_get_a_prometheus_answer(query, time, start, end, step, path) -> None:
    from urllib.parse import urlencode

    params = {"query": query, "time": time, "start": start, "end": end, "step": step}
    qs = urlencode(params, errors="surrogatepass")
    status, body = raw_call(make_api(), path, qs)
    assert_prometheus_answer(status, body)
