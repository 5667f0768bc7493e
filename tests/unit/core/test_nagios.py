"""``modelmon check``'s thresholds follow the Monitoring Plugins guidelines'
range table, and every failure is UNKNOWN with one line (tested end to end by a
real Nagios in tests/integration/core/test_nagios_check.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelmon.nagios import Check, Range, default_ranges
from modelmon.thresholds import load_thresholds


@pytest.mark.parametrize("text,alerts,quiet", [
    ("10", [-1, 11], [0, 10]),          # outside 0..10
    ("10:", [9.9, -5], [10, 1e9]),       # below 10
    ("~:10", [10.1], [-1e9, 10]),        # above 10
    ("10:20", [9, 21], [10, 20]),        # outside 10..20
    ("@10:20", [10, 15, 20], [9, 21]),   # inside 10..20
])
def test_ranges_alert_as_the_guidelines_say(text, alerts, quiet) -> None:
    r = Range.parse(text, "--warning")
    assert [r.alerts(v) for v in alerts] == [True] * len(alerts)
    assert [r.alerts(v) for v in quiet] == [False] * len(quiet)


@pytest.mark.parametrize("text", ["", "abc", "20:10", ":", "1:2:3"])
def test_a_bad_range_names_the_option(text) -> None:
    with pytest.raises(ValueError, match="--critical"):
        Range.parse(text, "--critical")


def test_default_ranges_follow_the_thresholds_file() -> None:
    defaults = load_thresholds(None)
    assert default_ranges("burn-rate", defaults) == ("~:6", "~:14.4")
    assert default_ranges("drift", defaults) == ("~:0.1", "~:0.25")
    assert default_ranges("accuracy", defaults) == ("0.9:", "0.8:")
    assert default_ranges("edge-link", defaults) == ("~:300", "~:900")


def test_label_values_are_escaped_in_the_query() -> None:
    query = Check("accuracy", "http://p", model='fr"aud\\').query()
    assert query == 'min(modelmon:feedback_accuracy:1h{model="fr\\"aud\\\\"})'


def test_missing_arguments_are_unknown_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "modelmon", "check", "edge-link"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == ("MODELMON EDGE-LINK UNKNOWN - --device: required for edge-link "
                           "(the edge.device_id)\n")
