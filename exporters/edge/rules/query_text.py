"""A parsed expression printed as Prometheus 2.42 prints it (``promql/parser/printer.go``).

Prometheus's rules API shows a rule's ``query`` as ``rule.Query().String()``:
its parsed expression re-printed, not the text of the rule file. The parser's
own ``str()`` (the Rust crate's ``Display``) prints differently (``x{}``, no
space after ``by (...)``), so this module follows ``printer.go`` node by node:
matchers sorted and quoted as Go's ``%q``, durations as ``model.Duration``,
numbers as ``fmt.Sprint``, no parentheses but the expression's own.

What the parser's AST cannot tell is not reproduced: a unary ``+`` (the parser
drops it; Prometheus prints ``+x``).
"""

from __future__ import annotations

from datetime import timedelta

import promql_parser as pp

from modelmon.exporters.edge.promql.selectors import duration_ms
from modelmon.exporters.edge.rules.float_text import go_float

# model.Duration's units; years and weeks only when they divide the duration exactly.
_DURATION_UNITS = (("y", 365 * 86_400_000, True), ("w", 7 * 86_400_000, True),
                   ("d", 86_400_000, False), ("h", 3_600_000, False), ("m", 60_000, False),
                   ("s", 1000, False), ("ms", 1, False))
_MATCH_OPS = ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="), (pp.MatchOp.Re, "=~"),
              (pp.MatchOp.NotRe, "!~"))
_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
               "\v": r"\v", "\\": "\\\\", '"': '\\"'}


def model_duration(ms: int) -> str:
    """Prometheus's ``model.Duration.String()``: ``90000`` -> ``1m30s``, ``0`` -> ``0s``."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size, exact in _DURATION_UNITS:
        if exact and ms % size:
            continue
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): printable characters kept, the rest escaped."""
    out = ['"']
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def expr_text(node: pp.Expr) -> str:
    """``node`` as Prometheus 2.42's ``Expr.String()``."""
    if isinstance(node, pp.NumberLiteral):
        return go_float(node.val)
    if isinstance(node, pp.StringLiteral):
        return go_quote(node.val)
    if isinstance(node, pp.ParenExpr):
        return f"({expr_text(node.expr)})"
    if isinstance(node, pp.UnaryExpr):
        return f"-{expr_text(node.expr)}"
    if isinstance(node, pp.VectorSelector):
        return _selector(node) + _at(node.at) + _offset(node.offset)
    if isinstance(node, pp.MatrixSelector):
        vs = node.vector_selector
        return (f"{_selector(vs)}[{model_duration(duration_ms(node.range))}]"
                f"{_at(vs.at)}{_offset(vs.offset)}")
    if isinstance(node, pp.SubqueryExpr):
        step = model_duration(duration_ms(node.step)) if node.step else ""
        return (f"{expr_text(node.expr)}[{model_duration(duration_ms(node.range))}:{step}]"
                f"{_at(node.at)}{_offset(node.offset)}")
    if isinstance(node, pp.Call):
        return f"{node.func.name}({', '.join(expr_text(a) for a in node.args)})"
    if isinstance(node, pp.AggregateExpr):
        return _aggregate(node)
    if isinstance(node, pp.BinaryExpr):
        return _binary(node)
    raise TypeError(f"cannot print a {type(node).__name__}")


def _selector(node: pp.VectorSelector) -> str:
    matchers = []
    for m in node.matchers.matchers:
        op = next(text for member, text in _MATCH_OPS if member == m.op)
        if m.name == "__name__" and op == "=" and m.value == node.name:
            continue
        matchers.append(f"{m.name}{op}{go_quote(m.value)}")
    name = node.name or ""
    if not matchers:
        return name
    return f"{name}{{{','.join(sorted(matchers))}}}"


def _offset(offset: timedelta | None) -> str:
    ms = duration_ms(offset) if offset is not None else 0
    if ms > 0:
        return f" offset {model_duration(ms)}"
    if ms < 0:
        return f" offset -{model_duration(-ms)}"
    return ""


def _at(at: pp.AtModifier | None) -> str:
    if at is None:
        return ""
    if at.type == pp.AtModifierType.Start:
        return " @ start()"
    if at.type == pp.AtModifierType.End:
        return " @ end()"
    assert at.at is not None
    return f" @ {at.at.timestamp():.3f}"


def _aggregate(node: pp.AggregateExpr) -> str:
    text = str(node.op)
    mod = node.modifier
    if mod is not None:
        labels = ", ".join(mod.labels)
        if mod.type == pp.AggModifierType.Without:
            text += f" without ({labels}) "
        elif labels:
            text += f" by ({labels}) "
    param = f"{expr_text(node.param)}, " if node.param is not None else ""
    return f"{text}({param}{expr_text(node.expr)})"


def _binary(node: pp.BinaryExpr) -> str:
    mod = node.modifier
    flag, matching = "", ""
    if mod is not None:
        flag = " bool" if mod.return_bool else ""
        vm = mod.matching
        on = vm is not None and vm.type == pp.LabelModifierType.Include
        if vm is not None and (on or list(vm.labels)):
            matching = f" {'on' if on else 'ignoring'} ({', '.join(vm.labels)})"
            if mod.card == pp.VectorMatchCardinality.ManyToOne:
                matching += f" group_left ({', '.join(mod.group_labels or [])})"
            elif mod.card == pp.VectorMatchCardinality.OneToMany:
                matching += f" group_right ({', '.join(mod.group_labels or [])})"
    return f"{expr_text(node.lhs)} {node.op}{flag}{matching} {expr_text(node.rhs)}"
