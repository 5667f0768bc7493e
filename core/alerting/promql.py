"""Just enough PromQL reading to know which series an expression touches.

The lint (every metric a dashboard or rule references exists in the
catalog) and the KPI -> panel/alert references need the metric names of an
expression. A full parser is not needed for that: skipping string literals,
label matchers, range selectors and the label lists of ``by``/``on``/...
leaves identifiers that are either function names (followed by ``(``),
keywords, or metric names.
"""

from __future__ import annotations

import re

from modelmon.catalog import CATALOG
from modelmon.kpi import DEFAULT_PREFIX, KPI

_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
    # Aggregation operators may be followed by `by (...)` instead of `(`.
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
})
# Keywords followed by a parenthesized list of label names, not of expressions.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Series Prometheus itself produces; allowed in rules next to catalog metrics.
BUILTIN_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"})

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.]*")


def metric_names(expr: str) -> set[str]:
    """Names of the series (metrics and recording rules) that ``expr`` selects."""
    names: set[str] = set()
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "{":
            i = _skip_to(expr, i, "}")
        elif c == "[":
            i = _skip_to(expr, i, "]")
        elif c == "$":  # a Grafana variable outside a matcher, e.g. ${__rate_interval}
            m = re.compile(r"\$\{[^}]*\}|\$[A-Za-z0-9_]+").match(expr, i)
            i = m.end() if m else i + 1
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = _NUMBER.match(expr, i)
            i = m.end() if m else i + 1
        elif c.isalpha() or c in "_:":
            m = _IDENT.match(expr, i)
            assert m is not None
            word, i = m.group(0), m.end()
            j = _skip_space(expr, i)
            follows_paren = j < n and expr[j] == "("
            if word in _LABEL_LIST_KEYWORDS:
                if follows_paren:
                    i = _skip_to(expr, j, ")")
            elif word in _KEYWORDS or follows_paren:
                continue
            else:
                names.add(word)
        else:
            i += 1
    return names


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _skip_string(expr: str, i: int) -> int:
    quote, i = expr[i], i + 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_to(expr: str, i: int, closing: str) -> int:
    while i < len(expr) and expr[i] != closing:
        if expr[i] in "\"'`":
            i = _skip_string(expr, i)
        else:
            i += 1
    return i + 1


def kpi_of(metric: str, prefix: str = DEFAULT_PREFIX, catalog: tuple[KPI, ...] = CATALOG) -> KPI | None:
    """The catalog KPI a scraped series name belongs to (``_bucket`` etc. included)."""
    if not metric.startswith(prefix):
        return None
    name = metric[len(prefix):]
    for kpi in catalog:
        if name == kpi.name or (
            kpi.type == "histogram" and name in {kpi.name + s for s in kpi.sample_suffixes}
        ):
            return kpi
    return None

