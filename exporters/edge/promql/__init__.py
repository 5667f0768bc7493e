"""A PromQL evaluator for the subset edge rules need, on the ``promql-parser`` AST.

The device evaluates the same rule expressions as the cloud Prometheus over its
own recent samples. Semantics follow Prometheus 2.x (the version the tests run
against): lookback delta 5 m with closed intervals, staleness markers end a
series, counter resets and extrapolation as ``promql/functions.go``, ``offset``,
``bool``, ``__name__`` dropped after arithmetic and most functions, and
Prometheus's matching errors. ``tests/integration/exporters/edge/
test_promql_differential.py`` proves the results equal to a real Prometheus.

Anything outside the subset is refused when an expression is loaded
(:func:`compile_expr` raises :class:`UnsupportedExpression`).

Modules by role: ``storage`` (the samples), ``values`` (vectors, scalars,
labels), ``selectors`` (matchers, lookback, ranges), ``range_functions``
(``rate`` and the ``*_over_time`` family), ``aggregations``, ``binops``
(operators and vector matching), ``functions`` (instant-vector functions),
``support`` (what is supported, checked at load) and ``engine``.
"""

from __future__ import annotations

from modelmon.exporters.edge.promql.engine import Query, compile_expr
from modelmon.exporters.edge.promql.errors import PromQLError, UnsupportedExpression
from modelmon.exporters.edge.promql.storage import STALE_NAN, MemoryStorage, is_stale
from modelmon.exporters.edge.promql.values import Sample, Scalar, String, Vector

__all__ = [
    "STALE_NAN", "MemoryStorage", "PromQLError", "Query", "Sample", "Scalar",
    "String", "UnsupportedExpression", "Vector", "compile_expr", "is_stale",
]
