"""Prometheus rule files evaluated on the device (recording and alerting rules).

``load_rule_files`` reads the standard rule-file format (groups of ``record``
and ``alert`` rules with ``for``, ``keep_firing_for``, ``labels`` and
``annotations``) and compiles every expression with the edge PromQL evaluator,
refusing what it does not support with the file, group, rule and construct
named. ``RuleGroupEvaluator`` evaluates a group at an instant the way
Prometheus 2.42's rule manager does: recording results become series named by
the rule, alert state follows ``rules/alerting.go`` (pending, firing,
``keep_firing_for``, resolved) and is exposed as the ``ALERTS`` and
``ALERTS_FOR_STATE`` series.
"""

from __future__ import annotations

from modelmon.exporters.edge.rules.evaluation import Alert, GroupResult, RuleGroupEvaluator
from modelmon.exporters.edge.rules.files import (
    AlertingRule,
    RecordingRule,
    RuleFileError,
    RuleGroup,
    load_rule_files,
    parse_rule_groups,
)

__all__ = [
    "Alert", "AlertingRule", "GroupResult", "RecordingRule", "RuleFileError", "RuleGroup",
    "RuleGroupEvaluator", "load_rule_files", "parse_rule_groups",
]
