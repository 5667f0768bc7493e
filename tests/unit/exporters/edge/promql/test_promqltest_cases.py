"""Prometheus's own test cases (``cases.test``, promqltest format) run on the
edge evaluator: a small runner for ``load``, ``clear``, ``eval instant at``
and ``eval_fail instant at``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import pytest

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import (
    STALE_NAN,
    MemoryStorage,
    PromQLError,
    Scalar,
    UnsupportedExpression,
    compile_expr,
)

CASES = Path(__file__).with_name("cases.test")
_EVAL = re.compile(r"^(eval|eval_fail) instant at (\S+) (.+)$")
_SERIES = re.compile(r"^(\S*\{.*\}|[a-zA-Z_:][a-zA-Z0-9_:]*)\s+(.*)$")


@dataclass
class Case:
    line: int
    expr: str
    at_ms: int
    fails: bool
    storage: MemoryStorage
    expected: list[tuple[LabelSet | None, float]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"line {self.line}: {self.expr} @ {self.at_ms} ms"


def duration_ms(text: str) -> int:
    if re.fullmatch(r"0+[a-z]*", text):
        return 0
    return int(promql_parser.parse_duration(text).total_seconds() * 1000)


def parse_labels(text: str) -> LabelSet:
    if text == "{}":
        return ()
    node = promql_parser.parse(text)
    assert isinstance(node, promql_parser.VectorSelector)
    labels = {m.name: m.value for m in node.matchers.matchers}
    if node.name:
        labels["__name__"] = node.name
    return tuple(sorted(labels.items()))


def expand_values(text: str) -> list[float | None]:
    out: list[float | None] = []
    for token in text.split():
        m = re.fullmatch(r"(-?[\d.e+]+|_)([+-])([\d.e]+)x(\d+)", token)
        if m:
            start, sign, step, times = m.groups()
            if start == "_":
                out += [None] * (int(times) + 1)
                continue
            delta = float(step) * (1 if sign == "+" else -1)
            out += [float(start) + i * delta for i in range(int(times) + 1)]
        elif token == "_":
            out.append(None)
        elif token == "stale":
            out.append(STALE_NAN)
        else:
            out.append(float(token))
    return out


def load_cases() -> list[Case]:
    cases: list[Case] = []
    storage = MemoryStorage()
    lines = CASES.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line == "clear":
            storage = MemoryStorage()
        elif line.startswith("load "):
            step = duration_ms(line.split()[1])
            while i < len(lines) and lines[i].strip():
                m = _SERIES.match(lines[i].strip())
                assert m, lines[i]
                labels = parse_labels(m.group(1))
                for n, v in enumerate(expand_values(m.group(2))):
                    if v is not None:
                        storage.append(labels, n * step, v)
                i += 1
        elif (m := _EVAL.match(line)) is not None:
            case = Case(i, m.group(3), duration_ms(m.group(2)), m.group(1) == "eval_fail",
                        storage)
            while i < len(lines) and lines[i].strip():
                expected = lines[i].strip()
                i += 1
                labels_text, _, value = expected.rpartition(" ")
                case.expected.append(
                    (parse_labels(labels_text.strip()) if labels_text else None, float(value)))
            cases.append(case)
        else:
            raise AssertionError(f"cases.test line {i}: {line!r}")
    return cases


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9)


@pytest.mark.parametrize("case", load_cases(), ids=repr)
def test_prometheus_case(case: Case) -> None:
    if case.fails:
        with pytest.raises((PromQLError, UnsupportedExpression)):
            case_result = compile_expr(case.expr).evaluate(case.storage, case.at_ms)
            print(case_result)
        return
    result = compile_expr(case.expr).evaluate(case.storage, case.at_ms)
    if isinstance(result, Scalar):
        assert len(case.expected) == 1 and case.expected[0][0] is None
        assert same(result.value, case.expected[0][1])
        return
    got = {s.labels: s.value for s in result}
    want = {labels: value for labels, value in case.expected}
    assert set(got) == set(want)
    for labels, value in want.items():
        assert same(got[labels], value), (labels, got[labels], value)
