"""Reading rule files: the standard Prometheus format, checked at load.

Every error names the file, the group and the rule, and says what to change;
an expression outside the edge subset is refused with the construct named.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelmon.exporters.edge.promql import Query, UnsupportedExpression, compile_expr
from modelmon.exporters.edge.promql.selectors import LOOKBACK_DELTA_MS
from modelmon.exporters.edge.rules.templates import Template, TemplateError, parse_template

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DURATION = re.compile(r"((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?")
_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
# The default of edge.rules_max_range: six times the generated edge group's
# window (thresholds' edge.device_rules_window, 1h) and every rule of the docs.
DEFAULT_MAX_RANGE_MS = 6 * 3_600_000


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message names file, group and rule."""


@dataclass(frozen=True)
class RecordingRule:
    name: str
    query: Query
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertingRule:
    name: str
    query: Query
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: Mapping[str, Template] = field(default_factory=dict)
    annotations: Mapping[str, Template] = field(default_factory=dict)


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    file: str
    interval_ms: int | None  # None: the agent's evaluation_interval
    rules: tuple[Rule, ...]
    # The file's ``limit``: a rule producing more series (recording) or alerts
    # (alerting) fails that evaluation, as in Prometheus (evaluation.py).
    limit: int = 0

    @property
    def lookback_ms(self) -> int:
        return max((r.query.lookback_ms for r in self.rules), default=0)


def parse_duration_ms(text: object, where: str) -> int:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text * 1000)
    m = _DURATION.fullmatch(str(text)) if isinstance(text, str) and text else None
    if m is None or text == "":
        raise RuleFileError(f"{where}: {text!r} is not a duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(m.group(2 * i + 2) or 0) * unit for i, unit in enumerate(_UNITS_MS))


def range_ms(rule: Rule) -> int:
    """How far back ``rule`` reads: its longest range plus offset (what
    ``edge.rules_max_range`` bounds; the window adds the 5 m lookback)."""
    return max(rule.query.lookback_ms - LOOKBACK_DELTA_MS, 0)


def check_max_range(groups: Iterable[RuleGroup], max_range_ms: int,
                    key: str = "edge.rules_max_range") -> None:
    """Refuse a rule reading further back than ``max_range_ms``: the rule window
    keeps every series of the device for as long as its longest rule reads, so
    one ``rate(x[30d])`` would keep 30 days of everything in memory."""
    for group in groups:
        for rule in group.rules:
            reach = range_ms(rule)
            if reach > max_range_ms:
                kind = "record" if isinstance(rule, RecordingRule) else "alert"
                raise RuleFileError(
                    f"{group.file}: group {group.name!r}: {kind} {rule.name!r} reads "
                    f"{duration_text(reach)} of history (range + offset), more than {key} "
                    f"({duration_text(max_range_ms)}): the device would keep that much of every "
                    f"series in memory; shorten the rule's range or raise {key}")


def duration_text(ms: int) -> str:
    """``ms`` as a Prometheus duration in days at most (90_000 -> 1m30s)."""
    parts = []
    for unit, name in zip(_UNITS_MS[2:], ("d", "h", "m", "s", "ms"), strict=True):
        if ms >= unit:
            parts.append(f"{ms // unit}{name}")
            ms %= unit
    return "".join(parts) or "0s"


def load_rule_files(patterns: Iterable[str], base_dir: Path | None = None) -> list[RuleGroup]:
    """Groups of every file matching ``patterns`` (paths or globs, relative to
    ``base_dir``); a pattern matching nothing is an error, as in Prometheus."""
    groups: list[RuleGroup] = []
    seen: set[tuple[str, str]] = set()
    for pattern in patterns:
        full = str(Path(base_dir or ".") / pattern) if not Path(pattern).is_absolute() else pattern
        paths = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not paths or not Path(paths[0]).exists():
            raise RuleFileError(f"rules: {pattern!r} matches no file")
        for path in paths:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise RuleFileError(f"rules: cannot read {path}: {exc.strerror}") from None
            for group in parse_rule_groups(text, path):
                if (group.file, group.name) in seen:
                    raise RuleFileError(f"{path}: group {group.name!r} is defined twice")
                seen.add((group.file, group.name))
                groups.append(group)
    return groups


class _RuleFileLoader(yaml.SafeLoader):
    """Reads rule names, expressions, labels and annotations as written.

    Prometheus decodes them into Go strings, which keep a YAML scalar's text:
    ``page: true`` is the label value ``true`` and ``ratio: 1.50`` is ``1.50``.
    PyYAML would make them ``True`` and ``1.5`` (other labels on the alert
    than the cloud Prometheus gives it for the same file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in _TEXT_KEYS and isinstance(value_node, yaml.ScalarNode):
                mapping[key] = None if value_node.tag == _NULL else value_node.value
            elif key in _TEXT_MAPS and isinstance(value_node, yaml.MappingNode):
                mapping[key] = {self._written(k): self._written(v) for k, v in value_node.value}
        return mapping

    def _written(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):  # null: Go's zero string
            return "" if node.tag == _NULL else node.value
        return self.construct_object(node, deep=True)  # refused by the rule's checks


_NULL = "tag:yaml.org,2002:null"
_TEXT_KEYS = frozenset({"record", "alert", "expr"})
_TEXT_MAPS = frozenset({"labels", "annotations"})


def parse_rule_groups(text: str, file: str = "<rules>") -> list[RuleGroup]:
    try:
        doc = yaml.load(text, Loader=_RuleFileLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{file}: not valid YAML: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        raise RuleFileError(f"{file}: a rule file is a mapping with a 'groups' list")
    unknown = set(doc) - {"groups"}
    if unknown:
        raise RuleFileError(f"{file}: unknown key(s) {sorted(unknown)}; only 'groups'")
    names: set[str] = set()
    return [_group(g, file, i, names) for i, g in enumerate(doc["groups"])]


def _group(raw: Any, file: str, index: int, names: set[str]) -> RuleGroup:
    where = f"{file}: groups[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise RuleFileError(f"{where}: a group needs a 'name'")
    name = raw["name"]
    where = f"{file}: group {name!r}"
    if name in names:
        raise RuleFileError(f"{where}: defined twice")
    names.add(name)
    unknown = set(raw) - {"name", "interval", "rules", "limit"}
    if unknown:
        raise RuleFileError(f"{where}: unknown key(s) {sorted(unknown)}")
    interval = parse_duration_ms(raw["interval"], f"{where}: interval") \
        if "interval" in raw else None
    rules = raw.get("rules") or []
    if not isinstance(rules, list):
        raise RuleFileError(f"{where}: 'rules' is a list")
    limit = raw.get("limit") or 0
    if not isinstance(limit, int) or isinstance(limit, bool):  # as Prometheus refuses it
        raise RuleFileError(f"{where}: 'limit' is a whole number of series or alerts "
                            f"(0: no limit), not {limit!r}")
    return RuleGroup(name, file, interval, tuple(_rule(r, where, i) for i, r in enumerate(rules)),
                     limit)


def _rule(raw: Any, group_where: str, index: int) -> Rule:
    where = f"{group_where}: rules[{index}]"
    if not isinstance(raw, dict):
        raise RuleFileError(f"{where}: a rule is a mapping")
    record, alert = raw.get("record"), raw.get("alert")
    if (record is None) == (alert is None):
        raise RuleFileError(f"{where}: a rule has exactly one of 'record' or 'alert'")
    name = str(record if record is not None else alert)
    where = f"{group_where}: {'record' if record is not None else 'alert'} {name!r}"
    allowed = {"record", "expr", "labels"} if record is not None else \
        {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    unknown = set(raw) - allowed
    if unknown:
        raise RuleFileError(f"{where}: unknown key(s) {sorted(unknown)}")
    if not isinstance(raw.get("expr"), (str, int, float)) or raw.get("expr") == "":
        raise RuleFileError(f"{where}: 'expr' is required")
    try:
        query = compile_expr(str(raw["expr"]), rule=name)
    except UnsupportedExpression as exc:
        raise RuleFileError(f"{group_where}: {exc}") from None
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(_LABEL_NAME.fullmatch(str(k)) for k in labels):
        raise RuleFileError(f"{where}: 'labels' maps label names to values")
    for key, texts in (("labels", labels), ("annotations", raw.get("annotations") or {})):
        bad = next((k for k, v in texts.items() if not isinstance(v, str)), None) \
            if isinstance(texts, dict) else None
        if bad is not None:
            raise RuleFileError(f"{where}: {key}.{bad} is a string (quote it), not "
                                f"{type(texts[bad]).__name__}")
    if record is not None:
        if not _METRIC_NAME.fullmatch(name):
            raise RuleFileError(f"{where}: {name!r} is not a valid metric name")
        return RecordingRule(name, query, {str(k): str(v) for k, v in labels.items()})
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise RuleFileError(f"{where}: 'annotations' maps names to templates")
    try:
        label_templates = {str(k): parse_template(str(v)) for k, v in labels.items()}
        annotation_templates = {str(k): parse_template(str(v)) for k, v in annotations.items()}
    except TemplateError as exc:
        raise RuleFileError(f"{where}: {exc}") from None
    return AlertingRule(
        name, query,
        parse_duration_ms(raw.get("for", 0), f"{where}: for"),
        parse_duration_ms(raw.get("keep_firing_for", 0), f"{where}: keep_firing_for"),
        label_templates, annotation_templates)
