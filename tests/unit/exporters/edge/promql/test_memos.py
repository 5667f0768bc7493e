"""The evaluator's shortcuts give what the plain computation gives: rate() read
in place, the per-series count of decreases behind it, and the memos of group
keys, matching signatures and alert labels (over series that come and go)."""

from __future__ import annotations

import random

from modelmon.exporters.edge.promql import STALE_NAN, MemoryStorage, compile_expr, is_stale
from modelmon.exporters.edge.promql.range_functions import extrapolated_rate
from modelmon.exporters.edge.promql.storage import SeriesSamples
from modelmon.exporters.edge.promql.values import drop_name


def _plain_rate(storage: MemoryStorage, name: str, t: int, range_ms: int, fn: str
                ) -> dict[tuple[tuple[str, str], ...], float]:
    """extrapolated_rate over each series' window with the staleness markers removed:
    what the evaluator computed before it read windows in place."""
    out = {}
    for series in storage.series(name):
        window = [(ts, v) for ts, v in zip(series.timestamps, series.values, strict=True)
                  if t - range_ms <= ts <= t and not is_stale(v)]
        result = extrapolated_rate([ts for ts, _ in window], [v for _, v in window],
                                   t - range_ms, t, range_ms, is_counter=fn != "delta",
                                   is_rate=fn == "rate")
        if result is not None:
            out[drop_name(series.labels)] = result
    return out


def test_rate_increase_delta_read_in_place_equal_the_plain_computation() -> None:
    rng = random.Random(7)
    storage = MemoryStorage()
    for i in range(40):
        labels = [("__name__", "c"), ("i", str(i))]
        value = rng.random() * 10
        t = rng.randrange(0, 5_000)
        while t < 200_000:
            kind = rng.random()
            if kind < 0.03:
                value = rng.random()  # a counter reset
            elif kind < 0.05 and i % 4 == 0:
                storage.append(labels, t, STALE_NAN)
                t += rng.randrange(1_000, 15_000)
                continue
            value += rng.random() * 5
            storage.append(labels, t, value)
            t += rng.randrange(1_000, 15_000)
        if i % 5 == 0:  # out of order and overwritten samples
            storage.append(labels, 100_500, 3.0)
            storage.append(labels, 100_500, 2.0)
    for retain in (0, 60_000, 120_000):
        storage.retain(retain)
        for fn in ("rate", "increase", "delta"):
            for range_ms in (10_000, 60_000):
                query = compile_expr(f"{fn}(c[{range_ms // 1000}s])")
                for t in range(retain, 200_000, 7_919):
                    got = {s.labels: s.value for s in query.evaluate(storage, t)}
                    assert got == _plain_rate(storage, "c", t, range_ms, fn), (fn, range_ms, t)


def test_decreases_follow_appends_inserts_and_drops() -> None:
    rng = random.Random(3)
    series = SeriesSamples((("__name__", "x"),))
    for step in range(3_000):
        t = step * 10 if rng.random() > 0.05 else rng.randrange(0, step * 10 + 1)
        series.append(t, rng.choice([rng.random(), float("nan"), float(step)]))
        if step % 97 == 0:
            series.drop_before(rng.randrange(0, step * 10 + 1))
        values = series.values
        assert series.decreases == sum(1 for a, b in zip(values, values[1:], strict=False)
                                       if b < a)


def test_memos_follow_series_that_come_and_go() -> None:
    storage = MemoryStorage()
    agg = compile_expr("sum by (job) (x)")
    match = compile_expr("x / on (i) group_left (job) y")
    for round_ in range(4):
        for i in range(5):
            job = f"j{(i + round_) % 3}"
            storage.append([("__name__", "x"), ("i", str(i)), ("job", job), ("r", str(round_))],
                           round_ * 1000, float(i))
            storage.append([("__name__", "y"), ("i", str(i)), ("job", job)], round_ * 1000, 2.0)
        storage.retain(round_ * 1000)
        t = round_ * 1000
        sums: dict[str, float] = {}
        for i in range(5):
            job = f"j{(i + round_) % 3}"
            sums[job] = sums.get(job, 0.0) + i
        assert {dict(s.labels)["job"]: s.value for s in agg.evaluate(storage, t)} == sums
        got = {s.labels: s.value for s in match.evaluate(storage, t)}
        assert got == {(("i", str(i)), ("job", f"j{(i + round_) % 3}"), ("r", str(round_))):
                       i / 2.0 for i in range(5)}
