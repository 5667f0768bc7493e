"""Prometheus recording and alerting rules generated from the KPI catalog.

``rule_groups(config)`` is the source; ``render_all(config)`` gives the files
``modelmon rules build`` writes (the rule file, a Kubernetes PrometheusRule
and the default thresholds). Thresholds come from one mixin-style config
(``ThresholdsConfig``, loaded with ``load_thresholds``).
"""

from __future__ import annotations

from modelmon.alerting.render import alert_names, render_all, rule_groups
from modelmon.thresholds import ThresholdsConfig, load_thresholds, thresholds_from_mapping

__all__ = [
    "ThresholdsConfig",
    "alert_names",
    "load_thresholds",
    "render_all",
    "rule_groups",
    "thresholds_from_mapping",
]
