"""Model quality: input data quality, drift per feature, predictions, accuracy from feedback."""

from __future__ import annotations

from typing import Any

from grafanalib.core import Dashboard

from modelmon.catalog import CATALOG
from modelmon.dashboards.common import (
    catalog_panels,
    custom_variable,
    dashboard,
    datasource_variable,
    model_variables,
    quantile,
    rate,
    row,
    selector,
    timeseries,
)
from modelmon.kpi import DEFAULT_PREFIX

UID = "modelmon-model-quality"
TITLE = "modelmon / Model quality"
GROUPS = ("quality", "feedback")
_MV = "{{model}} {{version}}"
# Data-quality counters shown as problems per input row, by kind.
_VIOLATIONS = (
    ("feature_missing_total", "missing"),
    ("feature_out_of_range_total", "out of range"),
    ("feature_type_errors_total", "wrong type"),
    ("feature_unseen_category_total", "unseen category"),
)
_DRIFT_THRESHOLDS = ((0.1, "orange"), (0.25, "red"))


def _have(*names: str) -> bool:
    present = {k.name for k in CATALOG}
    return all(n in present for n in names)


def panels(prefix: str) -> list[Any]:
    p = prefix
    out: list[Any] = []
    if _have("input_rows_total"):
        out.append(row("Input data quality"))
        out.append(timeseries(
            "Input rows checked",
            "Rows per second passed through check_inputs, per model and version: the "
            "denominator of every data-quality ratio.",
            "cps",
            [(f"sum by (model, version) ({rate('input_rows_total', p)})", _MV)],
        ))
        kinds = [(n, label) for n, label in _VIOLATIONS if _have(n)]
        if kinds:
            out.append(timeseries(
                "Data-quality problems per input row",
                "Missing, out-of-range, mistyped and unseen-category values per input row, by "
                "kind. The ModelDataQualityViolations alert fires on their sum.",
                "percentunit",
                [(
                    f"sum by (model, version) ({rate(n, p)})\n/\n"
                    f"sum by (model, version) ({rate('input_rows_total', p)})",
                    f"{_MV} {label}",
                ) for n, label in kinds],
            ))
        for name, label in kinds:
            out.append(timeseries(
                f"Top features: {label} values",
                f"The 10 features with the most {label} values per second. One feature "
                "dominating usually means one upstream field broke.",
                "cps",
                [(f"topk(10, sum by (model, version, feature) ({rate(name, p)}))",
                  _MV + " {{feature}}")],
            ))
    if _have("feature_drift"):
        out.append(row("Drift against the reference profile"))
        out.append(timeseries(
            "Feature drift ($drift_method)",
            "Per-feature drift of the live window against the reference profile. PSI: below "
            "0.1 stable, 0.1-0.25 moderate, above 0.25 major (the drift alert's default).",
            "none",
            [(
                f"topk(15, max by (model, version, feature) "
                f"({selector('feature_drift', p, method='$drift_method')}))",
                _MV + " {{feature}}",
            )],
            width=24,
            thresholds=_DRIFT_THRESHOLDS,
        ))
        for name, title in (("prediction_drift", "Prediction drift"), ("score_drift", "Score drift")):
            if _have(name):
                out.append(timeseries(
                    f"{title} ($drift_method)",
                    f"{title} of the live window against the reference profile; it can move "
                    "without feature drift when the features miss the real shift.",
                    "none",
                    [(f"max by (model, version) ({selector(name, p, method='$drift_method')})",
                      _MV)],
                    thresholds=_DRIFT_THRESHOLDS,
                ))
    if _have("predictions_total"):
        out.append(row("Predictions"))
        out.append(timeseries(
            "Predicted class share",
            "Share of each predicted class among all predictions: a class that swells or "
            "vanishes is prediction drift you can see directly.",
            "percentunit",
            [(
                f"sum by (model, version, class) ({rate('predictions_total', p)})\n"
                f"/ ignoring (class) group_left\n"
                f"sum by (model, version) ({rate('predictions_total', p)})",
                _MV + " {{class}}",
            )],
            stacked=True,
        ))
        if _have("prediction_score"):
            out.append(timeseries(
                "Prediction confidence p10 / p50 / p90",
                "Quantiles of the model's confidence scores. A slide towards low scores is an "
                "early warning of drift, before any ground truth arrives.",
                "percentunit",
                [(quantile(q, "prediction_score", p), f"p{int(q * 100)} {_MV}")
                 for q in (0.1, 0.5, 0.9)],
            ))
    if _have("feedback_total"):
        out.append(row("Ground truth"))
        if _have("feedback_accuracy"):
            out.append(timeseries(
                "Accuracy from feedback",
                "Accuracy over the last feedback window of joined ground-truth labels; the "
                "ModelAccuracyDrop alert watches it.",
                "percentunit",
                [(f"avg by (model, version) ({selector('feedback_accuracy', p)})", _MV)],
            ))
        out.append(timeseries(
            "Feedback correct share",
            "Share of joined ground-truth labels the model got right, over the dashboard's "
            "rate interval (computed from the counters, independent of the window gauge).",
            "percentunit",
            [(
                f"sum by (model, version) ({rate('feedback_total', p, outcome='correct')})\n/\n"
                f"sum by (model, version) ({rate('feedback_total', p)})",
                _MV,
            )],
        ))
    return out + catalog_panels(GROUPS, p, out)


def build(prefix: str = DEFAULT_PREFIX) -> Dashboard:
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Input data quality, drift per feature against the reference profile, "
        "prediction and score distributions, and accuracy from late ground truth.",
        tags=["model", "quality", "drift"],
        panels=panels(prefix),
        variables=[
            datasource_variable(),
            *model_variables(prefix),
            custom_variable("drift_method", "Drift method", ("psi", "js", "ks")),
        ],
    )
