"""Backtick strings read as Prometheus reads them: as written, no escapes.

promql-parser alone refused `a\\.b` (the common way to write a regular
expression) and read `a\\\\b` as a\\b; rules, the query API and the rules API
parse through ``promql.parsing.parse``, which gives every raw string its
written value.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmon.exporters.edge.promql import MemoryStorage, compile_expr
from modelmon.exporters.edge.promql.parsing import parse, quote_raw_strings

RAW = st.text(st.characters(blacklist_characters="`", blacklist_categories=("Cs",)), max_size=30)


@given(RAW)
def test_a_raw_string_s_value_is_what_is_written(raw: str) -> None:
    node = parse(f"up{{job=`{raw}`}}")
    assert [m.value for m in node.matchers.matchers] == [raw]


@given(RAW, RAW)
def test_quoted_strings_and_comments_pass_through(a: str, b: str) -> None:
    quoted = '"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    text = f"up{{x={quoted}}} # `{b}`\n"
    assert quote_raw_strings(text) == text


@pytest.mark.parametrize(("expr", "value"), [
    (r'up{job=~`api\.v[0-9]+`}', r"api\.v[0-9]+"),
    (r"up{job=`C:\\models`}", r"C:\\models"),
    ("up{job=`it's \"quoted\"`}", "it's \"quoted\""),
])
def test_rules_and_queries_take_prometheus_s_raw_strings(expr: str, value: str) -> None:
    storage = MemoryStorage()
    for job in (value, "api.v2", "apixv2"):
        storage.append((("__name__", "up"), ("job", job)), 1000, 1.0)
    query = compile_expr(expr, rule="RawString")
    result = query.evaluate(storage, 1000)
    jobs = sorted(dict(s.labels)["job"] for s in result)
    if expr.startswith("up{job=~"):
        assert jobs == ["api.v2"]  # the dot is escaped: "apixv2" does not match
    else:
        assert jobs == [value]
