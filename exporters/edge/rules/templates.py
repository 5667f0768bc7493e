"""The subset of Prometheus's alert templates (Go ``text/template``) rules use:
``{{ $labels.x }}``, ``{{ $value }}``, ``{{ $externalLabels.x }}``, ``.Labels.x``,
``.Value``, pipelines, and the functions ``humanize``, ``humanize1024``,
``humanizePercentage``, ``humanizeDuration``, ``printf``, ``toUpper``,
``toLower``, ``title``. Actions (``if``, ``range``, ...) are refused at load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from modelmon.exporters.edge.rules.float_text import go_float

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')
_ACTIONS = ("if", "else", "end", "range", "with", "define", "template", "block", "break",
            "continue")


class TemplateError(ValueError):
    pass


def _g4(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = int(v)
        seconds, minutes, hours, days = d % 60, d // 60 % 60, d // 3600 % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def _to_float(x: object) -> float:
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        return float(x)
    raise TemplateError(f"cannot convert {x!r} to a number")


def _printf(fmt: object, *args: object) -> str:
    if not isinstance(fmt, str):
        raise TemplateError("printf needs a format string first")
    converted = tuple(go_float(a) if isinstance(a, float) and re.search(r"%[vs]", fmt) else a
                      for a in args)
    return fmt.replace("%v", "%s") % converted


FUNCTIONS: dict[str, Callable[..., str]] = {
    "humanize": lambda v: humanize(_to_float(v)),
    "humanize1024": lambda v: humanize1024(_to_float(v)),
    "humanizePercentage": lambda v: humanize_percentage(_to_float(v)),
    "humanizeDuration": lambda v: humanize_duration(_to_float(v)),
    "printf": _printf,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
}


@dataclass(frozen=True)
class TemplateData:
    labels: Mapping[str, str]
    external_labels: Mapping[str, str]
    value: float


_NUMBER = re.compile(r"-?\d+(\.\d*)?([eE][+-]?\d+)?")


def _operand(token: str, data: TemplateData) -> object:
    # Labels and the value first: what alert templates use, on every evaluation
    # (no number, string or other form starts like them).
    if token.startswith("$labels."):
        return data.labels.get(token[8:], "<no value>")
    if token in ("$value", ".Value"):
        return data.value
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token.startswith("`"):
        return token[1:-1]
    if _NUMBER.fullmatch(token):
        return float(token) if any(c in token for c in ".eE") else int(token)
    for prefix, mapping in ((".Labels.", data.labels),
                            ("$externalLabels.", data.external_labels),
                            (".ExternalLabels.", data.external_labels)):
        if token.startswith(prefix):
            return mapping.get(token[len(prefix):], "<no value>")
    raise TemplateError(f"unsupported operand {token!r}")


def _show(x: object) -> str:
    if isinstance(x, str):
        return x
    return go_float(x) if isinstance(x, float) else str(x)


Getter = Callable[[TemplateData], object]


def _raising(exc: Exception) -> Getter:
    def fail(data: TemplateData) -> object:
        raise exc
    return fail


def _getter(token: str) -> Getter:
    """``_operand`` decided once, at parse time: what it returns for ``token``."""
    if token.startswith("$labels.") or token.startswith(".Labels."):
        name = token[8:]
        return lambda d: d.labels.get(name, "<no value>")
    for prefix in ("$externalLabels.", ".ExternalLabels."):
        if token.startswith(prefix):
            name = token[len(prefix):]
            return lambda d: d.external_labels.get(name, "<no value>")
    if token in ("$value", ".Value"):
        return lambda d: d.value
    try:
        constant = _operand(token, TemplateData({}, {}, 0.0))
    except (TemplateError, TypeError, ValueError) as exc:
        return _raising(exc)
    return lambda d: constant


def _compile(pipeline: Sequence[tuple[str, ...]]) -> Getter:
    """``_run`` over ``pipeline`` as one closure (operands and functions looked up once)."""
    steps: list[tuple[Callable[..., str] | None, list[Getter], bool]] = []
    for i, command in enumerate(pipeline):
        head, *rest = command
        if head in FUNCTIONS:
            steps.append((FUNCTIONS[head], [_getter(t) for t in rest], i > 0))
        elif rest or i > 0:
            steps.append((None, [_raising(TemplateError(f"{head!r} is not a function"))], False))
        else:
            steps.append((None, [_getter(head)], False))
    if len(steps) == 1 and steps[0][0] is None:
        return steps[0][1][0]

    def run(data: TemplateData) -> object:
        value: object = None
        for fn, getters, chained in steps:
            if fn is None:
                value = getters[0](data)
                continue
            args = [g(data) for g in getters]
            if chained:
                args.append(value)
            value = fn(*args)
        return value
    return run


@dataclass(frozen=True)
class Template:
    """A parsed template; ``expand`` never raises (as Prometheus, it returns
    ``<error expanding template: ...>``)."""

    parts: tuple[str | tuple[tuple[str, ...], ...], ...]
    # The parts as closures, made once: alert annotations are expanded at every
    # evaluation that changes an alert's value.
    _compiled: tuple[str | Getter, ...] = field(init=False, compare=False, repr=False)
    # The text it was parsed from: what Prometheus's rules API shows as a rule's labels
    # and annotations.
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(
            p if isinstance(p, str) else _compile(p) for p in self.parts if p != ""))

    @property
    def static(self) -> str | None:
        """The text when the template has no action (the same for every alert)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        return None

    def expand(self, data: TemplateData) -> str:
        compiled = self._compiled
        if len(compiled) == 1 and isinstance(compiled[0], str):
            return compiled[0]  # no action: summaries, runbook URLs
        try:
            return "".join([part if isinstance(part, str) else _show(part(data))
                            for part in compiled])
        except (TemplateError, TypeError, ValueError) as exc:
            return f"<error expanding template: {exc}>"


def _run(pipeline: Sequence[tuple[str, ...]], data: TemplateData) -> object:
    value: object = None
    for i, command in enumerate(pipeline):
        head, *rest = command
        if head in FUNCTIONS:
            args = [_operand(t, data) for t in rest]
            if i > 0:
                args.append(value)
            value = FUNCTIONS[head](*args)
        else:
            if rest or i > 0:
                raise TemplateError(f"{head!r} is not a function")
            value = _operand(head, data)
    return value


def parse_template(text: str) -> Template:
    """Parse ``text``; :class:`TemplateError` says what is not supported."""
    parts: list[str | tuple[tuple[str, ...], ...]] = []
    pos = 0
    for m in _ACTION.finditer(text):
        literal = text[pos:m.start()]
        if m.group(1):
            literal = literal.rstrip()
        if parts and isinstance(parts[-1], str) and parts[-1] == "\x00trim":
            parts.pop()
            literal = literal.lstrip()
        parts.append(literal)
        body = m.group(2)
        if body.startswith("/*"):
            pos = m.end()
            continue
        tokens = _TOKEN.findall(body)
        if not tokens or tokens[0] in _ACTIONS or any(":=" in t or t == "=" for t in tokens):
            raise TemplateError(f"{{{{ {body} }}}}: only values and pipelines are supported "
                                "on the edge (no if/range/with/variables)")
        pipeline: list[tuple[str, ...]] = []
        command: list[str] = []
        for token in tokens:
            if token == "|":
                pipeline.append(tuple(command))
                command = []
            else:
                command.append(token)
        pipeline.append(tuple(command))
        for command_tokens in pipeline:
            if not command_tokens:
                raise TemplateError(f"{{{{ {body} }}}}: empty command in pipeline")
            head = command_tokens[0]
            if head not in FUNCTIONS:
                _operand(head, TemplateData({}, {}, 0.0))  # raises for what is unsupported
        parts.append(tuple(pipeline))
        if m.group(3):
            parts.append("\x00trim")
        pos = m.end()
    tail = text[pos:]
    if parts and parts[-1] == "\x00trim":
        parts.pop()
        tail = tail.lstrip()
    parts.append(tail)
    return Template(tuple(parts), source=text)
