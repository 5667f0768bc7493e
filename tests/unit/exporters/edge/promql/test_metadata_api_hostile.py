"""The device's metadata endpoints (labels, label values, series, buildinfo) under
hostile or odd requests: Prometheus's JSON answer or its bad_data error, never a 500,
and the work bounded however many match[] come."""

from __future__ import annotations

import io
import json
import threading
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmon.exporters.edge.promql import MemoryStorage
from modelmon.exporters.edge.rules.metadata_api import MAX_MATCH_SETS, PROMETHEUS_VERSION
from modelmon.exporters.edge.rules.query_api import QueryAPI


def make_api() -> QueryAPI:
    storage = MemoryStorage()
    for i in range(10):
        storage.append([("__name__", "reqs_total"), ("job", "cam")], i * 10_000, float(i))
        storage.append([("__name__", "temp"), ("zone", "gpu"), ("job", "cam")], i * 10_000, 1.0)
    storage.append([("__name__", "late"), ("a", "x")], 500_000, 1.0)
    return QueryAPI(storage, threading.Lock(), lambda env, start: [b"metrics"])


def call(api: QueryAPI, path: str, query: str | list[tuple[str, str]] = "", body: bytes = b"",
         method: str = "GET") -> tuple[int, dict[str, Any]]:
    status: list[str] = []
    qs = query if isinstance(query, str) else urlencode(query)
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": qs,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    out = b"".join(api(environ, lambda s, headers: status.append(s)))
    return int(status[0].split()[0]), json.loads(out)


def test_answers_are_sorted_and_filtered_by_match_and_time() -> None:
    api = make_api()
    assert call(api, "/api/v1/labels") == (200, {"status": "success",
                                                 "data": ["__name__", "a", "job", "zone"]})
    assert call(api, "/api/v1/labels", [("match[]", "temp")])[1]["data"] == \
        ["__name__", "job", "zone"]
    assert call(api, "/api/v1/label/__name__/values")[1]["data"] == ["late", "reqs_total", "temp"]
    # start/end: only series with a sample in [start, end].
    assert call(api, "/api/v1/label/__name__/values", [("start", "400"), ("end", "600")]
                )[1]["data"] == ["late"]
    assert call(api, "/api/v1/label/__name__/values", [("end", "2023-01-01T00:00:00Z")]
                )[1]["data"] == ["late", "reqs_total", "temp"]
    code, body = call(api, "/api/v1/series", [("match[]", 'reqs_total'), ("match[]", '{job="cam"}')],
                      method="GET")
    assert code == 200 and body["data"] == [{"__name__": "reqs_total", "job": "cam"},
                                            {"__name__": "temp", "job": "cam", "zone": "gpu"}]
    code, body = call(api, "/api/v1/series", body=b"match%5B%5D=late", method="POST")
    assert code == 200 and body["data"] == [{"__name__": "late", "a": "x"}]


def test_unknown_label_name_is_an_empty_list() -> None:
    assert call(make_api(), "/api/v1/label/nope/values") == (200, {"status": "success",
                                                                  "data": []})
    assert call(make_api(), "/api/v1/labels", [("match[]", "missing_metric")])[1]["data"] == []


def test_bad_requests_are_bad_data() -> None:
    api = make_api()
    cases: list[tuple[str, str | list[tuple[str, str]]]] = [
        ("/api/v1/series", ""),  # match[] is required
        ("/api/v1/series", [("match[]", "{}")]),
        ("/api/v1/series", [("match[]", '{a=~".*"}')]),  # matches the empty string only
        ("/api/v1/series", [("match[]", "rate(x[5m])")]),
        ("/api/v1/series", [("match[]", "x[5m]")]),
        ("/api/v1/series", [("match[]", "x offset 5m")]),
        ("/api/v1/labels", [("match[]", 'x{a=~"("}')]),
        ("/api/v1/labels", [("start", "yesterday")]),
        ("/api/v1/label/__name__/values", [("end", "inf")]),
        ("/api/v1/label/1bad/values", ""),
        ("/api/v1/label/__name__/values", "match%5B%5D=x%7Ba%3D%22%ff%22%7D"),  # not UTF-8
        ("/api/v1/label/%ff/values", ""),
    ]
    for path, query in cases:
        code, body = call(api, path, query)
        assert code == 400 and body["status"] == "error" and body["errorType"] == "bad_data", \
            (path, query, body)
        assert body["error"]
    code, body = call(api, "/api/v1/labels", body=b"match%5B%5D=\xff", method="POST")
    assert code == 400 and body["errorType"] == "bad_data"


def test_a_huge_match_count_is_refused_before_any_scan() -> None:
    api = make_api()
    many = [("match[]", f'reqs_total{{job="{i}"}}') for i in range(MAX_MATCH_SETS + 1)]
    code, body = call(api, "/api/v1/series", many)
    assert code == 400 and body["errorType"] == "bad_data" and str(MAX_MATCH_SETS) in body["error"]
    code, body = call(api, "/api/v1/series", many[:MAX_MATCH_SETS - 1] + [("match[]", "temp")])
    assert code == 200 and [s["__name__"] for s in body["data"]] == ["temp"]


def test_buildinfo_and_methods() -> None:
    api = make_api()
    code, body = call(api, "/api/v1/status/buildinfo")
    assert code == 200 and body["data"]["version"] == PROMETHEUS_VERSION
    assert "modelmon" in body["data"]["revision"]
    assert call(api, "/api/v1/label/job/values", method="POST")[0] == 405
    assert call(api, "/api/v1/labels", method="POST")[0] == 200


_text = st.text(max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/api/v1/labels", "/api/v1/series", "/api/v1/label/job/values",
                             "/api/v1/label/__name__/values"]),
       matches=st.lists(_text, max_size=3), start=_text, end=_text)
def test_any_parameters_get_a_prometheus_answer(path: str, matches: list[str], start: str,
                                                end: str) -> None:
    code, body = call(make_api(), path, [("match[]", m) for m in matches] +
                      [("start", start), ("end", end)])
    assert code in (200, 400), (code, body)
    if code == 200:
        assert body["status"] == "success" and isinstance(body["data"], list)
    else:
        assert body["errorType"] == "bad_data" and body["error"]
