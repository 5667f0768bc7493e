"""What the edge evaluator refuses, and how: at load, naming the rule and the construct."""

from __future__ import annotations

import math

import pytest

from modelmon.exporters.edge.promql import (
    STALE_NAN,
    MemoryStorage,
    UnsupportedExpression,
    compile_expr,
    is_stale,
)


@pytest.mark.parametrize(("expr", "named"), [
    ("sort(up)", "function sort()"),
    ("label_join(up, \"a\", \",\", \"b\")", "function label_join()"),
    ("hour()", "function hour()"),
    ("count_values(\"v\", up)", "aggregation count_values()"),
    ("rate(up[5m:1m])", "a subquery"),
    ("up @ 100", "the @ modifier"),
    ("up[5m]", "a range vector"),
    ("sum(rate(x[5m])) / on(a) group_left sort_desc(y)", "function sort_desc()"),
])
def test_unsupported_is_refused_naming_rule_and_construct(expr: str, named: str) -> None:
    with pytest.raises(UnsupportedExpression) as err:
        compile_expr(expr, rule="ModelDown")
    message = str(err.value)
    assert "rule 'ModelDown'" in message and named in message
    assert "supported functions:" in message  # the fix is in the message


def test_parse_error_names_the_rule() -> None:
    with pytest.raises(UnsupportedExpression, match=r"rule 'R': cannot parse 'sum\(up'"):
        compile_expr("sum(up", rule="R")


def test_invalid_label_replace_is_refused_at_load() -> None:
    with pytest.raises(UnsupportedExpression, match="invalid regular expression"):
        compile_expr('label_replace(up, "a", "$1", "b", "(.*")', rule="R")
    with pytest.raises(UnsupportedExpression, match="invalid destination label name"):
        compile_expr('label_replace(up, "a-b", "$1", "b", "(.*)")', rule="R")


def test_lookback_covers_range_offset_and_staleness_window() -> None:
    assert compile_expr("up").lookback_ms == 300_000
    assert compile_expr("rate(x[10m] offset 1h) + up offset 5m").lookback_ms == \
        600_000 + 3_600_000 + 300_000


def test_only_the_stale_marker_is_stale() -> None:
    assert is_stale(STALE_NAN)
    assert not is_stale(math.nan) and not is_stale(0.0)


def test_a_staleness_marker_ends_the_series_and_a_normal_nan_does_not() -> None:
    storage = MemoryStorage()
    storage.append([("__name__", "a")], 0, 1.0)
    storage.append([("__name__", "a")], 10_000, STALE_NAN)
    storage.append([("__name__", "b")], 0, 1.0)
    storage.append([("__name__", "b")], 10_000, math.nan)
    got = compile_expr('{__name__=~"a|b"}').evaluate(storage, 20_000)
    assert isinstance(got, list)
    assert [(s.labels, math.isnan(s.value)) for s in got] == [((("__name__", "b"),), True)]


def test_retain_drops_samples_no_expression_can_reach() -> None:
    storage = MemoryStorage()
    for t in range(0, 100_000, 10_000):
        storage.append([("__name__", "a")], t, float(t))
    storage.append([("__name__", "old")], 0, 1.0)
    storage.retain(50_000)
    assert len(storage) == 1
    got = compile_expr("count_over_time(a[1h])").evaluate(storage, 100_000)
    assert isinstance(got, list) and got[0].value == 5
