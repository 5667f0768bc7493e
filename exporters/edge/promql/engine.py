"""Compiles a ``promql-parser`` AST into closures and evaluates them at an instant.

``compile_expr`` checks everything the evaluator refuses up front, so a rule is
accepted or refused when it is loaded, never half-way through an evaluation.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import promql_parser as pp

from modelmon.exporters.edge.prompb import LabelSet
from modelmon.exporters.edge.promql import aggregations, binops, functions, range_functions
from modelmon.exporters.edge.promql.errors import PromQLError, UnsupportedExpression
from modelmon.exporters.edge.promql.parsing import parse
from modelmon.exporters.edge.promql.selectors import LOOKBACK_DELTA_MS, Selector, duration_ms
from modelmon.exporters.edge.promql.storage import MemoryStorage, is_stale
from modelmon.exporters.edge.promql.support import (
    AGGREGATIONS,
    FUNCTIONS,
    RANGE_FUNCTIONS,
    describe,
)
from modelmon.exporters.edge.promql.values import (
    Sample,
    Scalar,
    String,
    Value,
    Vector,
    check_unique,
    drop_name,
)


@dataclass(frozen=True)
class Context:
    storage: MemoryStorage
    t_ms: int


Node = Callable[[Context], Value]

# The parser's enums are not hashable: looked up by equality.
_CARD = ((pp.VectorMatchCardinality.OneToOne, "one-to-one"),
         (pp.VectorMatchCardinality.ManyToOne, "many-to-one"),
         (pp.VectorMatchCardinality.OneToMany, "one-to-many"),
         (pp.VectorMatchCardinality.ManyToMany, "many-to-many"))


@dataclass(frozen=True)
class Query:
    """A compiled expression. ``lookback_ms`` is how far back in time it reads
    (range + offset + the 5 m lookback): the window a device must keep."""

    text: str
    result_type: str  # "vector" or "scalar"
    lookback_ms: int
    _root: Node

    def evaluate(self, storage: MemoryStorage, t_ms: int) -> Vector | Scalar:
        value = self._root(Context(storage, t_ms))
        assert not isinstance(value, String)
        return value


def compile_expr(text: str, rule: str | None = None) -> Query:
    """Parse and compile ``text``; :class:`UnsupportedExpression` names ``rule``
    and the construct when the expression cannot run on the edge."""
    where = f"rule {rule!r}: " if rule else ""
    try:
        ast = parse(text)
    except ValueError as exc:
        raise UnsupportedExpression(f"{where}cannot parse {text!r}: {exc}") from None
    compiler = _Compiler(where, text)
    root, kind = compiler.compile(ast)
    if kind not in ("vector", "scalar"):
        raise UnsupportedExpression(
            f"{where}{text!r} evaluates to a {kind}; a rule needs an instant vector or a scalar")
    return Query(text, kind, compiler.lookback_ms, root)


class _Compiler:
    def __init__(self, where: str, text: str) -> None:
        self.where = where
        self.text = text
        self.lookback_ms = LOOKBACK_DELTA_MS

    def refuse(self, what: str) -> UnsupportedExpression:
        return UnsupportedExpression(
            f"{self.where}{what} is not supported by the edge evaluator (in {self.text!r}); "
            f"{describe()}")

    def _reach(self, offset_ms: int, range_ms: int) -> None:
        self.lookback_ms = max(self.lookback_ms, offset_ms + range_ms + LOOKBACK_DELTA_MS)

    def selector(self, node: pp.VectorSelector) -> Selector:
        if node.at is not None:
            raise self.refuse("the @ modifier")
        if node.matchers.or_matchers:
            raise self.refuse("'or' inside a selector")
        try:
            sel = Selector.from_ast(node)
        except re.error as exc:
            raise UnsupportedExpression(f"{self.where}invalid regular expression in "
                                        f"{self.text!r}: {exc}") from None
        return sel

    def compile(self, node: pp.Expr) -> tuple[Node, str]:
        if isinstance(node, pp.ParenExpr):
            return self.compile(node.expr)
        if isinstance(node, pp.NumberLiteral):
            scalar = Scalar(node.val)
            return (lambda ctx: scalar), "scalar"
        if isinstance(node, pp.StringLiteral):
            string = String(node.val)
            return (lambda ctx: string), "string"
        if isinstance(node, pp.VectorSelector):
            sel = self.selector(node)
            self._reach(sel.offset_ms, 0)
            return (lambda ctx: sel.instant(ctx.storage, ctx.t_ms)), "vector"
        if isinstance(node, pp.MatrixSelector):
            raise self.refuse("a range vector outside a range function")
        if isinstance(node, pp.SubqueryExpr):
            raise self.refuse("a subquery")
        if isinstance(node, pp.UnaryExpr):
            return self.unary(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.Call):
            return self.call(node)
        raise self.refuse(type(node).__name__)

    def unary(self, node: pp.UnaryExpr) -> tuple[Node, str]:
        inner, kind = self.compile(node.expr)

        def negate(ctx: Context) -> Value:
            value = inner(ctx)
            if isinstance(value, Scalar):
                return Scalar(-value.value)
            assert isinstance(value, list)
            out = [Sample(drop_name(s.labels), -s.value) for s in value]
            check_unique(out)
            return out

        return negate, kind

    def binary(self, node: pp.BinaryExpr) -> tuple[Node, str]:
        op = str(node.op)
        lhs, lkind = self.compile(node.lhs)
        rhs, rkind = self.compile(node.rhs)
        mod = node.modifier
        return_bool = bool(mod and mod.return_bool)
        if lkind == "scalar" and rkind == "scalar":
            def scalars(ctx: Context) -> Value:
                a, b = lhs(ctx), rhs(ctx)
                assert isinstance(a, Scalar) and isinstance(b, Scalar)
                return Scalar(binops.scalar_op(op, a.value, b.value))
            return scalars, "scalar"
        if lkind == "vector" and rkind == "vector":
            card = next(text for member, text in _CARD if member == mod.card) if mod is not None else "one-to-one"
            matching_mod = mod.matching if mod is not None else None
            on = matching_mod is not None and matching_mod.type == pp.LabelModifierType.Include
            names = list(matching_mod.labels) if matching_mod is not None else []
            include = list(mod.group_labels or []) if mod is not None else []
            matching = binops.matching_from(card, on, names, include)
            if op in binops.SET_OPERATORS:
                def sets(ctx: Context) -> Value:
                    a, b = lhs(ctx), rhs(ctx)
                    assert isinstance(a, list) and isinstance(b, list)
                    out = binops.set_operation(op, a, b, matching)
                    check_unique(out)
                    return out
                return sets, "vector"

            def vectors(ctx: Context) -> Value:
                a, b = lhs(ctx), rhs(ctx)
                assert isinstance(a, list) and isinstance(b, list)
                out = binops.vector_vector(op, a, b, matching, return_bool)
                check_unique(out)
                return out
            return vectors, "vector"
        if {lkind, rkind} == {"vector", "scalar"}:
            swap = lkind == "scalar"

            def mixed(ctx: Context) -> Value:
                a, b = lhs(ctx), rhs(ctx)
                vec, sc = (b, a) if swap else (a, b)
                assert isinstance(vec, list) and isinstance(sc, Scalar)
                out = binops.vector_scalar(op, vec, sc.value, swap, return_bool)
                check_unique(out)
                return out
            return mixed, "vector"
        raise self.refuse(f"operator {op} between a {lkind} and a {rkind}")

    def aggregate(self, node: pp.AggregateExpr) -> tuple[Node, str]:
        op = str(node.op)
        if op not in AGGREGATIONS:
            raise self.refuse(f"aggregation {op}()")
        inner, kind = self.compile(node.expr)
        if kind != "vector":
            raise self.refuse(f"{op}() over a {kind}")
        param: Node | None = None
        if node.param is not None:
            param, pkind = self.compile(node.param)
            if pkind != "scalar":
                raise self.refuse(f"{op}() with a {pkind} parameter")
        mod = node.modifier
        without = mod is not None and mod.type == pp.AggModifierType.Without
        grouping = sorted(mod.labels) if mod is not None else []
        keys: dict[LabelSet, LabelSet] = {}

        def agg(ctx: Context) -> Value:
            p: float | None = None
            if param is not None:
                pv = param(ctx)
                assert isinstance(pv, Scalar)
                p = pv.value
            vec = inner(ctx)
            assert isinstance(vec, list)
            return aggregations.aggregate(op, vec, grouping, without, p, keys)

        return agg, "vector"

    def call(self, node: pp.Call) -> tuple[Node, str]:
        name = node.func.name
        if name not in FUNCTIONS:
            raise self.refuse(f"function {name}()")
        args = list(node.args)
        if name in RANGE_FUNCTIONS:
            return self.range_call(name, args)
        compiled = [self.compile(a) for a in args]
        kinds = [k for _, k in compiled]
        nodes = [n for n, _ in compiled]

        def scalar_arg(ctx: Context, i: int) -> float:
            v = nodes[i](ctx)
            assert isinstance(v, Scalar)
            return v.value

        def vector_arg(ctx: Context, i: int) -> Vector:
            v = nodes[i](ctx)
            assert isinstance(v, list)
            return v

        if name == "time":
            return (lambda ctx: Scalar(ctx.t_ms / 1000)), "scalar"
        if name == "scalar":
            return (lambda ctx: Scalar(functions.scalar(vector_arg(ctx, 0)))), "scalar"
        if name == "vector":
            return (lambda ctx: [Sample((), scalar_arg(ctx, 0))]), "vector"
        if name in functions.SIMPLE:
            return self._checked(lambda ctx: functions.simple(name, vector_arg(ctx, 0))), "vector"
        if name == "timestamp":
            # A selector's samples keep their own time; anything computed is at the
            # evaluation time (Prometheus special-cases a selector argument the same way).
            if isinstance(_unwrap(args[0]), pp.VectorSelector):
                return self._checked(lambda ctx: functions.timestamp(vector_arg(ctx, 0))), "vector"
            return self._checked(lambda ctx: functions.timestamp(
                vector_arg(ctx, 0), ctx.t_ms)), "vector"
        if name == "clamp":
            return self._checked(lambda ctx: functions.clamp(
                vector_arg(ctx, 0), scalar_arg(ctx, 1), scalar_arg(ctx, 2))), "vector"
        if name == "clamp_min":
            return self._checked(lambda ctx: functions.clamp(
                vector_arg(ctx, 0), scalar_arg(ctx, 1), None)), "vector"
        if name == "clamp_max":
            return self._checked(lambda ctx: functions.clamp(
                vector_arg(ctx, 0), None, scalar_arg(ctx, 1))), "vector"
        if name == "round":
            if len(nodes) == 1:
                return self._checked(lambda ctx: functions.round_(vector_arg(ctx, 0), 1.0)), "vector"
            return self._checked(lambda ctx: functions.round_(
                vector_arg(ctx, 0), scalar_arg(ctx, 1))), "vector"
        if name == "histogram_quantile":
            return self._checked(lambda ctx: functions.histogram_quantile(
                scalar_arg(ctx, 0), vector_arg(ctx, 1))), "vector"
        if name == "absent":
            target = _unwrap(args[0])
            labels = functions.absent_labels(
                self.selector(target).matchers if isinstance(target, pp.VectorSelector) else None)

            def absent(ctx: Context) -> Value:
                return [] if vector_arg(ctx, 0) else [Sample(labels, 1.0)]
            return absent, "vector"
        if name == "label_replace":
            strings = [_unwrap(a) for a in args[1:]]
            if not all(isinstance(s, pp.StringLiteral) for s in strings):
                raise self.refuse("label_replace() with non-literal strings")
            dst, repl, src, regex_text = (s.val for s in strings if isinstance(s, pp.StringLiteral))
            try:
                regex = re.compile(f"(?:{regex_text})")
            except re.error:
                raise UnsupportedExpression(f"{self.where}invalid regular expression in "
                                            f"label_replace(): {regex_text}") from None
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst):
                raise UnsupportedExpression(f"{self.where}invalid destination label name in "
                                            f"label_replace(): {dst}")
            return self._checked(lambda ctx: functions.label_replace(
                vector_arg(ctx, 0), dst, repl, src, regex)), "vector"
        raise self.refuse(f"function {name}() with arguments {kinds}")

    @staticmethod
    def _checked(fn: Callable[[Context], Vector]) -> Node:
        def run(ctx: Context) -> Value:
            out = fn(ctx)
            check_unique(out)
            return out
        return run

    def range_call(self, name: str, args: list[pp.Expr]) -> tuple[Node, str]:
        matrix_index = next(i for i, a in enumerate(args)
                            if isinstance(_unwrap(a), (pp.MatrixSelector, pp.SubqueryExpr)))
        matrix = _unwrap(args[matrix_index])
        if not isinstance(matrix, pp.MatrixSelector):
            raise self.refuse(f"a subquery in {name}()")
        sel = self.selector(matrix.vector_selector)
        range_ms = duration_ms(matrix.range)
        self._reach(sel.offset_ms, range_ms)
        others: list[Node] = []
        for i, a in enumerate(args):
            if i != matrix_index:
                n, kind = self.compile(a)
                if kind != "scalar":
                    raise self.refuse(f"{name}() with a {kind} argument")
                others.append(n)
        keep_name = name == "last_over_time"
        over_time = range_functions.OVER_TIME.get(name)

        def scalar_other(ctx: Context) -> float:
            v = others[0](ctx)
            assert isinstance(v, Scalar)
            return v.value

        if name in ("rate", "increase", "delta"):
            return self._extrapolated(name, sel, range_ms), "vector"

        def evaluate(ctx: Context) -> Value:
            t = ctx.t_ms
            range_end = t - sel.offset_ms
            range_start = range_end - range_ms
            param = scalar_other(ctx) if others else math.nan
            out: Vector = []
            for labels, times, values in sel.ranges(ctx.storage, t, range_ms):
                result: float | None
                if over_time is not None:
                    result = over_time(values)
                elif name in ("rate", "increase", "delta"):
                    result = range_functions.extrapolated_rate(
                        times, values, range_start, range_end, range_ms,
                        is_counter=name != "delta", is_rate=name == "rate")
                elif name in ("irate", "idelta"):
                    result = range_functions.instant_value(times, values, name == "irate")
                elif name == "deriv":
                    result = range_functions.deriv(times, values)
                elif name == "predict_linear":
                    result = range_functions.predict_linear(times, values, t, param)
                elif name == "quantile_over_time":
                    result = range_functions.quantile_over_time(param, values)
                elif name == "absent_over_time":
                    return []
                else:  # pragma: no cover - RANGE_FUNCTIONS and this chain agree
                    raise PromQLError(f"unknown range function {name}")
                if result is not None:
                    out.append(Sample(labels if keep_name else drop_name(labels), result))
            if name == "absent_over_time":
                return [Sample(functions.absent_labels(sel.matchers), 1.0)]
            check_unique(out)
            return out

        return evaluate, "vector"


    @staticmethod
    def _extrapolated(name: str, sel: Selector, range_ms: int) -> Node:
        """rate, increase, delta. A series with no staleness marker, and (for a counter)
        no value lower than the one before it anywhere, is read in place: the window's
        first and last samples and its length are all the arithmetic needs."""
        is_counter, is_rate = name != "delta", name == "rate"
        full = range_functions.extrapolated_rate
        tail = range_functions.extrapolate

        left, right = bisect.bisect_left, bisect.bisect_right

        def evaluate(ctx: Context) -> Value:
            range_end = ctx.t_ms - sel.offset_ms
            range_start = range_end - range_ms
            out: Vector = []
            # Selector.ranges without the copies: this loop runs for every series of every rate().
            for series in sel.select(ctx.storage):
                lo = left(series.timestamps, range_start)
                hi = right(series.timestamps, range_end)
                if lo >= hi:
                    continue
                result: float | None
                if series.stale_markers or (is_counter and series.decreases):
                    times: Sequence[int] = series.timestamps[lo:hi]
                    values: Sequence[float] = series.values[lo:hi]
                    if series.stale_markers:
                        kept = [(ts, v) for ts, v in zip(times, values, strict=True)
                                if not is_stale(v)]
                        times, values = [ts for ts, _ in kept], [v for _, v in kept]
                    result = full(times, values, range_start, range_end, range_ms,
                                  is_counter, is_rate)
                elif hi - lo < 2:
                    continue
                else:
                    values, times = series.values, series.timestamps
                    result = tail(values[hi - 1] - values[lo], times[lo], times[hi - 1],
                                  values[lo], hi - lo, range_start, range_end, range_ms,
                                  is_counter, is_rate)
                if result is not None:
                    out.append(Sample(drop_name(series.labels), result))
            check_unique(out)
            return out

        return evaluate


def _unwrap(node: pp.Expr) -> pp.Expr:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node
