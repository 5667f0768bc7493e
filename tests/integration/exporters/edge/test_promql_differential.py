"""The edge PromQL evaluator against a real Prometheus (differential testing).

One Prometheus (the remote_write receiver) gets samples with counter resets,
gaps longer than the 5 m lookback, jittered scrape times and staleness
markers, written with their timestamps; the evaluator gets the same samples.
Hypothesis generates expressions over the supported grammar and evaluation
times (random, and on the boundaries of lookback and ranges); every
(expression, time) point must give the same label sets and values within
1e-9 relative (NaN equals NaN), or fail in both.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmon.demo.processes import PrometheusProcess, find_binary, start_prometheus
from modelmon.exporters.edge.prompb import LabelSet, SeriesEncoder
from modelmon.exporters.edge.promql import (
    STALE_NAN,
    MemoryStorage,
    PromQLError,
    Scalar,
    compile_expr,
    is_stale,
)
from modelmon.exporters.edge.remote_write import compress
from support.edge_harness import RECEIVER_ARGS, receiver_config

pytestmark = pytest.mark.integration

STEP_MS = 15_000
SPAN_MS = 40 * 60_000
POINTS_PER_EXAMPLE = 3
EXAMPLES = 400  # x POINTS_PER_EXAMPLE >= 1,000 (expression, time) points


@dataclass
class Dataset:
    t0: int
    t_end: int
    series: dict[LabelSet, list[tuple[int, float]]] = field(default_factory=dict)

    def add(self, labels: dict[str, str], t: int, v: float) -> None:
        key = tuple(sorted(labels.items()))
        self.series.setdefault(key, []).append((t, v))

    def boundary_times(self) -> list[int]:
        """Sample times, and where they cross the lookback and range edges."""
        out: list[int] = []
        for samples in self.series.values():
            for t, _ in samples[::7]:
                out += [t, t + 300_000, t + 300_001, t + 60_000, t + 120_000, t + 60_000 + 1]
        return sorted(set(out))


def generate(t_end: int, seed: int = 13) -> Dataset:
    rng = random.Random(seed)
    data = Dataset(t_end - SPAN_MS, t_end)
    t0 = data.t0

    def times(step: int, jitter: int) -> Iterator[int]:
        t = t0 + rng.randrange(step)
        while t < t_end:
            yield t + rng.randint(-jitter, jitter)
            t += step

    # Counters with resets; instance c has a 7-minute gap; b/500 ends with a
    # staleness marker and comes back 3 minutes later.
    for code in ("200", "500"):
        for instance in ("a", "b", "c"):
            labels = {"__name__": "mm_requests_total", "code": code, "instance": instance,
                      "job": "edge"}
            value = rng.choice([0.0, 5.0, 1000.0])
            stale_at = t0 + 25 * 60_000
            marked = False
            for t in times(STEP_MS, 2_000):
                if instance == "c" and t0 + 10 * 60_000 < t < t0 + 17 * 60_000:
                    continue
                if instance == "b" and code == "500" and stale_at <= t < stale_at + 180_000:
                    if not marked:
                        data.add(labels, t, STALE_NAN)
                        marked = True
                    continue
                value = rng.uniform(0, 3) if rng.random() < 0.03 else value + rng.choice(
                    [0, 1, 2, 3.5, 10, 40])
                data.add(labels, t, value)
    # Gauges (negative and positive); one ends for good with a staleness marker.
    for instance in ("a", "b"):
        for zone in ("cpu", "gpu"):
            labels = {"__name__": "mm_temperature_celsius", "instance": instance, "zone": zone}
            ended = instance == "b" and zone == "gpu"
            for t in times(10_000, 1_500):
                if ended and t > t_end - 12 * 60_000:
                    data.add(labels, t, STALE_NAN)
                    break
                data.add(labels, t, round(rng.uniform(-20, 80), 3))
    # A classic histogram whose buckets reset together.
    for instance in ("a", "b"):
        counts = [0.0, 0.0, 0.0, 0.0]
        for t in times(STEP_MS, 1_000):
            if rng.random() < 0.03:
                counts = [0.0, 0.0, 0.0, 0.0]
            inc = [rng.randint(0, 5) for _ in range(4)]
            running = 0.0
            for i in range(4):
                running += inc[i]
                counts[i] += running
            for le, c in zip(("0.1", "0.5", "1", "+Inf"), counts, strict=True):
                data.add({"__name__": "mm_latency_seconds_bucket", "instance": instance,
                          "le": le}, t, c)
    # Info series for group_left.
    for instance, version in (("a", "1.0"), ("b", "2.0"), ("c", "2.0")):
        for t in times(30_000, 0):
            data.add({"__name__": "mm_model_info", "instance": instance, "version": version},
                     t, 1.0)
    return data


def write(prom_url: str, data: Dataset) -> None:
    # Series are created in label order so Prometheus's index order (creation
    # order) is the evaluator's: sums add in the same order, ties pick alike.
    encoder = SeriesEncoder()
    body = bytearray()
    for labels in sorted(data.series):
        for t, v in data.series[labels]:
            body += encoder.encode_stale(labels, t) if is_stale(v) else encoder.encode(labels, v, t)
    r = requests.post(f"{prom_url}/api/v1/write", data=compress(bytes(body)), headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0"}, timeout=30)
    assert r.status_code in (200, 204), r.text


@dataclass
class World:
    prom: PrometheusProcess
    storage: MemoryStorage
    data: Dataset
    session: requests.Session


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if find_binary("prometheus") is None:  # fail, never skip
        pytest.fail("prometheus binary missing; run the README test command (bash tests/run.sh)")
    prom = start_prometheus(receiver_config("1d"), workdir=tmp_path_factory.mktemp("prom"),
                            extra_args=RECEIVER_ARGS)
    try:
        data = generate(int(time.time() * 1000) // 1000 * 1000)
        write(prom.url, data)
        storage = MemoryStorage()
        for labels, samples in data.series.items():
            for t, v in samples:
                storage.append(labels, t, v)
        yield World(prom, storage, data, requests.Session())
    finally:
        prom.stop()


# --- the grammar -------------------------------------------------------------

COUNTER = st.sampled_from([
    "mm_requests_total", 'mm_requests_total{code="200"}', 'mm_requests_total{code!="200"}',
    'mm_requests_total{instance=~"a|b"}', 'mm_requests_total{instance!~"c"}',
    '{__name__=~"mm_req.*", code="500"}', 'mm_requests_total{instance="c"}',
    'mm_requests_total{instance="b", code="500"}',
])
GAUGE = st.sampled_from([
    "mm_temperature_celsius", 'mm_temperature_celsius{zone="gpu"}',
    'mm_temperature_celsius{instance=~".*"}', 'mm_temperature_celsius{instance="b"}',
])
HIST = st.sampled_from(["mm_latency_seconds_bucket", 'mm_latency_seconds_bucket{instance="a"}'])
OTHER = st.sampled_from(["mm_model_info", 'mm_model_info{version="2.0"}', "mm_missing_metric",
                         'mm_missing_metric{a="b", c=~"d"}'])
OFFSET = st.sampled_from(["", "", "", " offset 1m", " offset 5m", " offset 90s", " offset 17m"])
RANGE = st.sampled_from(["[30s]", "[1m]", "[2m]", "[5m]", "[7m30s]", "[10m]"])
NUMBER = st.sampled_from(["0", "1", "2.5", "-3", "100", "0.5", "1e3"])
QUANTILE = st.sampled_from(["0", "0.5", "0.9", "0.99", "1", "-1", "2"])
LABELS = st.sampled_from(["", "instance", "code", "zone", "instance, code", "le", "version"])


@st.composite
def selector(draw: st.DrawFn, pool: st.SearchStrategy[str] | None = None) -> str:
    return draw(st.one_of(COUNTER, GAUGE, HIST, OTHER) if pool is None else pool) + draw(OFFSET)


@st.composite
def matrix(draw: st.DrawFn, pool: st.SearchStrategy[str]) -> str:
    sel = draw(pool)
    return sel + draw(RANGE) + draw(OFFSET)


@st.composite
def leaf(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 1:
        return draw(selector())
    if kind == 2:
        fn = draw(st.sampled_from(["rate", "irate", "increase", "resets", "changes"]))
        return f"{fn}({draw(matrix(COUNTER))})"
    if kind == 3:
        fn = draw(st.sampled_from([
            "delta", "idelta", "deriv", "avg_over_time", "sum_over_time", "min_over_time",
            "max_over_time", "count_over_time", "last_over_time", "present_over_time",
            "stddev_over_time", "stdvar_over_time", "changes", "resets"]))
        return f"{fn}({draw(matrix(GAUGE))})"
    if kind == 4:
        return f"quantile_over_time({draw(QUANTILE)}, {draw(matrix(GAUGE))})"
    if kind == 5:
        inner = f"rate({draw(matrix(HIST))})"
        if draw(st.booleans()):
            inner = f"sum by (le) ({inner})"
        return f"histogram_quantile({draw(QUANTILE)}, {inner})"
    if kind == 6:
        return f"absent({draw(selector())})"
    if kind == 7:
        return f"absent_over_time({draw(matrix(st.one_of(COUNTER, GAUGE, OTHER)))})"
    if kind == 8:
        return f"predict_linear({draw(matrix(GAUGE))}, 60)"
    return f"vector({draw(scalar_expr())})"


@st.composite
def scalar_expr(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind <= 1:
        return draw(NUMBER)
    if kind == 2:
        return f"scalar(sum({draw(selector(GAUGE))}))"
    return "time()"


MATCHING = st.sampled_from([
    "", "on(instance)", "ignoring(code)", "on(instance) group_left(version)",
    "ignoring(zone) group_left()", "on(instance) group_right()", "on()", "ignoring(le)",
    "on(instance, code)"])
ARITH = st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2"])
COMPARE = st.sampled_from(["==", "!=", ">", "<", ">=", "<="])


def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    @st.composite
    def node(draw: st.DrawFn) -> str:
        a = draw(children)
        kind = draw(st.integers(0, 7))
        if kind == 0:
            op = draw(st.sampled_from(["sum", "avg", "min", "max", "count", "group", "stddev",
                                       "stdvar"]))
            labels = draw(LABELS)
            how = draw(st.sampled_from(["", "by", "without"]))
            return f"{op} {how} ({labels}) ({a})" if how else f"{op}({a})"
        if kind == 1:
            op = draw(st.sampled_from(["topk", "bottomk"]))
            k = draw(st.sampled_from(["1", "2", "3", "0"]))
            how = draw(st.sampled_from(["", "by (instance)", "without (code)"]))
            return f"{op} {how} ({k}, {a})" if how else f"{op}({k}, {a})"
        if kind == 2:
            return f"quantile by ({draw(LABELS)}) ({draw(QUANTILE)}, {a})"
        if kind == 3:
            fn = draw(st.sampled_from(["abs", "ceil", "floor", "sgn", "round", "timestamp",
                                       "-"]))
            if fn == "-":
                return f"-({a})"
            if fn == "round" and draw(st.booleans()):
                return f"round({a}, {draw(st.sampled_from(['0.5', '10', '3']))})"
            if fn == "timestamp" and draw(st.booleans()):
                return f"timestamp({draw(selector())})"
            return f"{fn}({a})"
        if kind == 4:
            clamp = draw(st.sampled_from(["clamp({a}, -5, 50)", "clamp_min({a}, 10)",
                                          "clamp_max({a}, 2)", "clamp({a}, 5, 1)",
                                          'label_replace({a}, "host", "h-$1", "instance", "(.*)")',
                                          'label_replace({a}, "instance", "", "zone", "g.*")',
                                          'label_replace({a}, "x", "${1}_$2$$", "code", "(\\\\d)(.*)")']))
            return clamp.replace("{a}", a)
        if kind == 5:
            op = draw(st.one_of(ARITH, COMPARE))
            b = draw(scalar_expr())
            use_bool = op in ("==", "!=", ">", "<", ">=", "<=") and draw(st.booleans())
            opt = f"{op} bool" if use_bool else op
            return f"({b}) {opt} ({a})" if draw(st.booleans()) else f"({a}) {opt} ({b})"
        if kind == 6:
            b = draw(children)
            op = draw(st.one_of(ARITH, COMPARE))
            use_bool = op in ("==", "!=", ">", "<", ">=", "<=") and draw(st.booleans())
            opt = f"{op} bool" if use_bool else op
            return f"({a}) {opt} {draw(MATCHING)} ({b})"
        b = draw(children)
        op = draw(st.sampled_from(["and", "or", "unless"]))
        on = draw(st.sampled_from(["", "on(instance)", "ignoring(code)", "on()"]))
        return f"({a}) {op} {on} ({b})"

    return node()


TREES = st.recursive(leaf(), extend, max_leaves=4)


@st.composite
def outermost(draw: st.DrawFn) -> str:
    """exp, ln, log2, log10 and sqrt come from C's libm here and Go's math in
    Prometheus, which may differ by one ulp; fed into an ill-conditioned
    operator (``exp(x) % 2.5`` with exp(x) near 1e200) one ulp becomes any
    value. As the outermost operation they must agree within 1e-9."""
    fn = draw(st.sampled_from(["exp", "ln", "log2", "log10", "sqrt"]))
    return f"{fn}({draw(TREES)})"


@st.composite
def scalars(draw: st.DrawFn) -> str:
    a, b = draw(scalar_expr()), draw(scalar_expr())
    op = draw(st.one_of(ARITH, COMPARE))
    return f"({a}) {op} bool ({b})" if op in ("==", "!=", ">", "<", ">=", "<=") else f"({a}) {op} ({b})"


EXPRESSIONS = st.one_of(TREES, TREES, TREES, outermost(), scalars())


# --- comparison --------------------------------------------------------------

def prometheus_answer(w: World, expr: str, t_ms: int) -> tuple[str, Any]:
    r = w.session.get(f"{w.prom.url}/api/v1/query",
                      params={"query": expr, "time": f"{t_ms // 1000}.{t_ms % 1000:03d}"},
                      timeout=30)
    body = r.json()
    if body["status"] != "success":
        return "error", f"{body.get('errorType')}: {body.get('error')}"
    data = body["data"]
    if data["resultType"] == "scalar":
        return "scalar", float(data["result"][1])
    assert data["resultType"] == "vector", data
    return "vector", [(tuple(sorted(s["metric"].items())), float(s["value"][1]))
                      for s in data["result"]]


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def check_point(w: World, expr: str, t_ms: int) -> str:
    """Asserts one point; returns what Prometheus answered ("error", "empty", "value")."""
    kind, expected = prometheus_answer(w, expr, t_ms)
    where = f"{expr!r} at {t_ms} ms"
    query = compile_expr(expr)
    try:
        got = query.evaluate(w.storage, t_ms)
    except PromQLError as exc:
        assert kind == "error", f"{where}: evaluator raised {exc}, Prometheus said {expected}"
        return "error"
    assert kind != "error", f"{where}: Prometheus failed ({expected}), the evaluator gave {got}"
    if kind == "scalar":
        assert isinstance(got, Scalar), f"{where}: expected a scalar, got {got}"
        assert same_float(got.value, expected), f"{where}: {got.value} != {expected}"
        return "value"
    assert isinstance(got, list), f"{where}: expected a vector, got {got}"
    mine = {s.labels: s.value for s in got}
    assert len(mine) == len(got), f"{where}: duplicate label sets in {got}"
    theirs = dict(expected)
    assert set(mine) == set(theirs), (
        f"{where}: label sets differ\n only evaluator: {sorted(set(mine) - set(theirs))}\n"
        f" only Prometheus: {sorted(set(theirs) - set(mine))}")
    for labels, value in theirs.items():
        assert same_float(mine[labels], value), f"{where}: {labels}: {mine[labels]} != {value}"
    return "value" if theirs else "empty"


@st.composite
def eval_times(draw: st.DrawFn, data: Dataset) -> list[int]:
    edges = data.boundary_times()
    return [draw(st.one_of(st.integers(data.t0 - 120_000, data.t_end + 480_000),
                           st.sampled_from(edges)))
            for _ in range(POINTS_PER_EXAMPLE)]


def test_generated_expressions_match_prometheus(world: World) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(expr=EXPRESSIONS, data=st.data())
    def run(expr: str, data: st.DataObject) -> None:
        for t_ms in data.draw(eval_times(world.data)):
            outcomes[check_point(world, expr, t_ms)] += 1

    outcomes: Counter[str] = Counter()
    run()
    # The proof needs points that say something: most must carry values, and some
    # must be errors both sides raise (how many depends on what hypothesis draws;
    # test_matching_errors_agree guarantees the error class its own points).
    assert sum(outcomes.values()) >= 1000, outcomes
    assert outcomes["value"] >= 500 and outcomes["error"] >= 1, outcomes


@pytest.mark.parametrize("expr", [
    # many-to-many matching: every instance's series on both sides
    "mm_requests_total + on() mm_temperature_celsius",
    # one-to-one matching with duplicates on the "one" side
    "mm_requests_total * on(instance) mm_temperature_celsius",
    # label_replace making two series of one label set
    'label_replace(mm_temperature_celsius, "zone", "all", "", "")',
])
def test_matching_errors_agree(world: World, expr: str) -> None:
    """Where Prometheus refuses to evaluate (matching conflicts, duplicate label
    sets), the evaluator refuses too, at every point of a sweep."""
    outcomes = Counter(check_point(world, expr, t_ms)
                       for t_ms in world.data.boundary_times()[::15])
    assert outcomes["error"] >= 5, outcomes


@pytest.mark.parametrize("expr", [
    "mm_requests_total", "rate(mm_requests_total[5m])", "increase(mm_requests_total[2m])",
    "irate(mm_requests_total[1m])", "delta(mm_temperature_celsius[5m])",
    "mm_temperature_celsius", "last_over_time(mm_temperature_celsius[10m])",
    "count_over_time(mm_requests_total[5m])", "resets(mm_requests_total[10m])",
    "absent_over_time(mm_temperature_celsius{zone=\"gpu\", instance=\"b\"}[5m])",
    "histogram_quantile(0.9, sum by (le) (rate(mm_latency_seconds_bucket[5m])))",
    "mm_requests_total * on(instance) group_left(version) mm_model_info",
    "mm_requests_total + mm_temperature_celsius",
    "sum by (instance) (rate(mm_requests_total[5m])) > bool 0.5",
    # raw strings: no escapes, as Prometheus reads them (promql.parsing)
    "mm_temperature_celsius{zone=~`g\\.?pu`}",
    'label_replace(mm_temperature_celsius, "z2", "$1", "zone", `(g)\\w+`)',
])
def test_every_boundary_time(world: World, expr: str) -> None:
    """Deterministic sweep: each expression at every boundary time (sample
    times, and one millisecond either side of the lookback and range edges)."""
    for t_ms in world.data.boundary_times()[::15]:
        check_point(world, expr, t_ms)


# --- the metadata endpoints (labels, label values, series) -------------------

@pytest.fixture(scope="module")
def edge_api(world: World) -> Iterator[str]:
    """The agent's query API over the world's samples, on a loopback port (the
    agent's own listener)."""
    import threading

    from modelmon.exporters.edge.http_server import serve
    from modelmon.exporters.edge.rules.query_api import QueryAPI

    server = serve("127.0.0.1", 0, QueryAPI(world.storage, threading.Lock(),
                                            lambda env, start: [b""]))
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


MATCH_SETS: list[list[str]] = [
    [], ['{__name__=~".+"}'], ["mm_requests_total"], ['{__name__=~"mm_(temp|lat).*", instance!="a"}'],
    ["mm_model_info", 'mm_requests_total{code="500"}'], ["mm_missing_metric"],
]


def _both(world: World, edge: str, method: str, path: str, params: list[tuple[str, str]]
          ) -> tuple[requests.Response, requests.Response]:
    def ask(base: str) -> requests.Response:
        if method == "POST":
            return world.session.post(base + path, data=params, timeout=30)
        return world.session.get(base + path, params=params, timeout=30)
    return ask(edge), ask(world.prom.url)


def test_metadata_endpoints_answer_like_prometheus(world: World, edge_api: str) -> None:
    s = 1000.0
    ranges: list[list[tuple[str, str]]] = [
        [],
        [("start", f"{(world.data.t0 + 2 * 60_000) / s:.3f}"),
         ("end", f"{(world.data.t0 + 8 * 60_000) / s:.3f}")],
        # The gauge b/gpu ended 12 minutes before the end: not a series of this range.
        [("start", f"{(world.data.t_end - 10 * 60_000) / s:.3f}"),
         ("end", f"{world.data.t_end / s:.3f}")],
        [("start", f"{(world.data.t_end + 3_600_000) / s:.3f}"),
         ("end", f"{(world.data.t_end + 7_200_000) / s:.3f}")],
    ]
    compared = 0
    for matches in MATCH_SETS:
        for times in ranges:
            params = [("match[]", m) for m in matches] + times
            for method in ("GET", "POST"):
                paths = ["/api/v1/labels", "/api/v1/label/__name__/values",
                         "/api/v1/label/instance/values", "/api/v1/label/nope/values"]
                if matches:
                    paths.append("/api/v1/series")
                for path in paths:
                    if method == "POST" and "/label/" in path:
                        continue
                    mine, theirs = _both(world, edge_api, method, path, params)
                    assert theirs.status_code == 200, (path, params, theirs.text)
                    assert mine.status_code == 200, (path, params, mine.text)
                    a, b = mine.json(), theirs.json()
                    assert a["status"] == b["status"] == "success"
                    if path == "/api/v1/series":
                        assert sorted(map(lambda d: sorted(d.items()), a["data"])) == \
                            sorted(map(lambda d: sorted(d.items()), b["data"])), (path, params)
                    else:
                        assert a["data"] == b["data"], (path, params)  # both sorted lists
                    compared += 1
    assert compared > 100
    # Not vacuous: the window answers something, filtered by the range.
    mine, theirs = _both(world, edge_api, "GET", "/api/v1/series",
                         [("match[]", "mm_temperature_celsius")] + ranges[2])
    assert len(mine.json()["data"]) == len(theirs.json()["data"]) == 3


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/series", []),
    ("/api/v1/series", [("match[]", "{}")]),
    ("/api/v1/series", [("match[]", '{instance=~".*"}')]),
    ("/api/v1/series", [("match[]", "rate(mm_requests_total[5m])")]),
    ("/api/v1/series", [("match[]", "mm_requests_total[5m]")]),
    ("/api/v1/series", [("match[]", "mm_requests_total offset 5m")]),
    ("/api/v1/labels", [("match[]", 'mm_requests_total{code=~"("}')]),
    ("/api/v1/labels", [("match[]", "mm_requests_total{")]),
    ("/api/v1/labels", [("start", "yesterday")]),
    ("/api/v1/label/__name__/values", [("end", "soon")]),
    ("/api/v1/label/__name__/values", [("match[]", "sum(mm_model_info)")]),
    ("/api/v1/label/1bad/values", []),
])
def test_metadata_bad_requests_are_bad_data_on_both(world: World, edge_api: str, path: str,
                                                    params: list[tuple[str, str]]) -> None:
    for method in ("GET", "POST") if "/label/" not in path else ("GET",):
        mine, theirs = _both(world, edge_api, method, path, params)
        assert theirs.status_code == mine.status_code == 400, (method, theirs.text, mine.text)
        assert theirs.json()["errorType"] == mine.json()["errorType"] == "bad_data"


def test_buildinfo_has_prometheus_shape(world: World, edge_api: str) -> None:
    mine, theirs = _both(world, edge_api, "GET", "/api/v1/status/buildinfo", [])
    assert mine.status_code == theirs.status_code == 200
    assert set(mine.json()["data"]) == set(theirs.json()["data"])
    assert mine.json()["data"]["version"] == theirs.json()["data"]["version"].split("+")[0]
