"""Fleet accuracy and error: accuracy, precision, recall and MAE computed by Prometheus.

The per-process gauges (``feedback_accuracy``, ``feedback_precision``, ...)
describe the last labels one process joined; averaged across replicas they
are not the model's accuracy. The feedback counters aggregate: these rules sum
them over every replica, worker and device of a model version for each
configured window (``quality.drift_windows``, the same windows as fleet drift)
and divide:

- ``<level>:feedback_accuracy:<w>``: correct / (correct + incorrect) from
  ``feedback_total``;
- ``<level>:feedback_precision:<w>{class}`` and ``..._recall:<w>{class}``:
  from ``feedback_class_labels_total``, true positives over true plus false
  positives (precision) or plus false negatives (recall); 3 series per class
  where the confusion matrix would need a join over one per pair of classes;
- ``<level>:feedback_mae:<w>``: the window's ``_sum`` over its ``_count`` of
  the ``feedback_absolute_error`` histogram;
- ``<level>:feedback_labels:<w>``: joined labels behind them (classification
  and regression), which alerts require a minimum of.

A ratio is absent while its denominator is 0 (no label in the window).

Window counts are those of the drift rules (``max_over_time - min_over_time``,
``increase()`` only after a counter reset) with one addition: a class's series
are created on its first label, so a series that did not exist before the
window started counts from 0 (``max_over_time`` alone), and its first labels
are not lost as they would be to ``increase()``.
"""

from __future__ import annotations

from typing import Any

from modelmon.alerting.common import has, record
from modelmon.alerting.drift import level
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig

_MV = "model, version"


def accuracy_series(prefix: str, window: str) -> str:
    """The fleet accuracy series, e.g. ``modelmon:feedback_accuracy:1h``."""
    return f"{level(prefix)}:feedback_accuracy:{window}"


def precision_series(prefix: str, window: str) -> str:
    return f"{level(prefix)}:feedback_precision:{window}"


def recall_series(prefix: str, window: str) -> str:
    return f"{level(prefix)}:feedback_recall:{window}"


def mae_series(prefix: str, window: str) -> str:
    return f"{level(prefix)}:feedback_mae:{window}"


def labels_series(prefix: str, window: str) -> str:
    """Joined labels in the window behind the fleet accuracy, precision, recall and MAE."""
    return f"{level(prefix)}:feedback_labels:{window}"


def window_count(selector: str, window: str, by: str) -> str:
    """The exact count a counter ``selector`` gained in ``window``, summed ``by`` labels.

    A series present before the window: last minus first sample in it; one born
    inside the window started at 0: its last sample; one that reset: ``increase()``.
    """
    series = f"{selector}[{window}]"
    return (
        f"sum by ({by}) (\n"
        f"    (\n"
        f"        max_over_time({series})\n"
        f"      - (min_over_time({series}) and {selector} offset {window})\n"
        f"      or\n"
        f"        max_over_time({series})\n"
        f"    )\n"
        f"  unless\n"
        f"    resets({series}) > 0\n"
        f"  or\n"
        f"    increase({series})\n"
        f")"
    )


def recording_rules(config: ThresholdsConfig, catalog: tuple[KPI, ...]) -> list[dict[str, Any]]:
    p, lv = config.prefix, level(config.prefix)
    rules: list[dict[str, Any]] = []
    outcomes = has(catalog, "feedback_total", ("model", "version", "outcome"))
    per_class = has(catalog, "feedback_class_labels_total", ("model", "version", "class", "outcome"))
    errors = next((k for k in catalog if k.name == "feedback_absolute_error"
                   and k.type == "histogram" and {"model", "version"} <= set(k.labels)), None)
    for w in config.quality.drift_windows:
        if outcomes:
            counts = f"{lv}:feedback_outcomes:increase{w}"
            rules.append(record(counts, window_count(
                f"{p}feedback_total", w, f"{_MV}, outcome")))
            rules.append(record(labels_series(p, w), f"sum by ({_MV}) ({counts})"))
            graded = f'{counts}{{outcome=~"correct|incorrect"}}'
            rules.append(record(accuracy_series(p, w), (
                f'sum by ({_MV}) ({counts}{{outcome="correct"}})\n'
                f"/\n"
                f"(sum by ({_MV}) ({graded}) > 0)"
            )))
        if per_class:
            counts = f"{lv}:feedback_class_labels:increase{w}"
            rules.append(record(counts, window_count(
                f"{p}feedback_class_labels_total", w, f"{_MV}, class, outcome")))
            hits = f'sum by ({_MV}, class) ({counts}{{outcome="true_positive"}})'
            for name, miss in ((precision_series(p, w), "false_positive"),
                               (recall_series(p, w), "false_negative")):
                graded = (f'sum by ({_MV}, class) '
                          f'({counts}{{outcome=~"true_positive|{miss}"}})')
                # A class with labels but no hit has precision (recall) 0.
                rules.append(record(name, f"({hits} or {graded} * 0)\n/\n({graded} > 0)"))
        if errors is not None:
            error_sum = f"{lv}:feedback_absolute_error_sum:increase{w}"
            error_count = f"{lv}:feedback_absolute_error_count:increase{w}"
            for name, suffix in ((error_sum, "_sum"), (error_count, "_count")):
                rules.append(record(name, window_count(
                    f"{p}feedback_absolute_error{suffix}", w, _MV)))
            rules.append(record(mae_series(p, w), f"{error_sum}\n/\n({error_count} > 0)"))
    return rules
