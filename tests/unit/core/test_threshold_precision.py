"""A threshold reaches PromQL, Zabbix and Nagios as the number configured.

``%g`` keeps 6 significant digits: a ratio of 0.9999995 was written ``1`` (the
alert could never fire) and 0.1234567 as ``0.123457``. Every ratio the
thresholds config knows is tried with 7 significant digits; each must appear
exactly in the generated rules (cloud and device groups) and in the Zabbix
template's macros where it has one.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from modelmon.alerting import device
from modelmon.alerting.render import rule_groups
from modelmon.catalog import CATALOG
from modelmon.thresholds import _RATIOS, ThresholdsConfig, thresholds_from_mapping
from modelmon.units import number_text
from modelmon.zabbix_triggers import macros

PRECISE = {"slo.availability_target": 0.9999995, "slo.latency_target": 0.9876543,
           "quality.violation_ratio": 0.0123457, "quality.min_accuracy": 0.8765432,
           "quality.max_accuracy_drop": 0.0543211, "edge.backlog_limit_ratio": 0.7654321,
           "edge.disk_full_ratio": 0.9123457, "edge.memory_low_ratio": 0.0876543,
           "containers.memory_limit_ratio": 0.9999995}


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_text_reads_back_as_the_number(value: float) -> None:
    text = number_text(value)
    assert float(text) == value
    if float(f"{value:g}") == value:
        assert text == f"{value:g}"  # unchanged wherever %g was exact


def test_every_ratio_is_tried() -> None:
    assert set(PRECISE) == _RATIOS


@pytest.mark.parametrize("key", sorted(PRECISE))
def test_a_precise_ratio_reaches_the_rules_as_configured(key: str) -> None:
    section, name = key.split(".")
    config = thresholds_from_mapping({section: {name: PRECISE[key]}})
    assert getattr(getattr(config, section), name) == PRECISE[key]
    text = yaml.safe_dump(rule_groups(config, CATALOG)) + yaml.safe_dump(
        device.rule_groups(config, CATALOG))
    if key in ("slo.availability_target", "slo.latency_target"):
        # the burn-rate rules compare against the error budget, 1 - target
        budget = 1 - PRECISE[key]
        assert f"{budget:.6g}" in text and float(f"{budget:.6g}") != 0.0
    else:
        assert repr(PRECISE[key]) in text, f"{key} = {PRECISE[key]!r} not in the rules"


def test_the_zabbix_macros_carry_the_configured_numbers() -> None:
    config = thresholds_from_mapping({"slo": {"availability_target": 0.9999995},
                                      "quality": {"min_accuracy": 0.8765432}})
    values = {m["macro"]: m["value"] for m in macros(config)}
    assert values["{$MODELMON.SLO.AVAILABILITY}"] == "0.9999995"
    assert values["{$MODELMON.ACCURACY.MIN}"] == "0.8765432"
    defaults = {m["macro"]: m["value"] for m in macros(ThresholdsConfig())}
    assert defaults["{$MODELMON.ACCURACY.MIN}"] == "0.8"  # %g text, as before
