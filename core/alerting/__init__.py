"""Prometheus recording and alerting rules generated from the KPI catalog.

``rule_groups(config)`` is the source; ``render_all(config)`` gives the files
``modelmon rules build`` writes (the rule file, a Kubernetes PrometheusRule
and the default thresholds). Thresholds come from one mixin-style config
(``RulesConfig``, loaded with ``load_rules_config``).
"""

from __future__ import annotations

from modelmon.alerting.config import RulesConfig, load_rules_config, rules_config_from_mapping
from modelmon.alerting.render import alert_names, render_all, rule_groups

__all__ = [
    "RulesConfig",
    "alert_names",
    "load_rules_config",
    "render_all",
    "rule_groups",
    "rules_config_from_mapping",
]
