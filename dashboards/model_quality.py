"""Model quality: input data quality, drift per feature, predictions, accuracy from feedback.

The drift, data-quality and accuracy panels draw the thresholds of the
alerts that watch them (``quality`` in the thresholds config), and the drift
method variable starts at the method the drift alerts use.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from modelmon.dashboards.common import (
    Row,
    custom_variable,
    dashboard,
    datasource_variable,
    fill_from_catalog,
    in_catalog,
    model_variables,
    quantile,
    rate,
    selector,
    timeseries,
)
from modelmon.thresholds import ThresholdsConfig

NAME = "model-quality"
UID = f"modelmon-{NAME}"
TITLE = "modelmon / Model quality"
DRIFT_METHODS = ("psi", "js", "ks")
_MV = "{{model}} {{version}}"
# Data-quality counters shown as problems per input row, by kind.
_VIOLATIONS = (
    ("feature_missing_total", "missing"),
    ("feature_out_of_range_total", "out of range"),
    ("feature_type_errors_total", "wrong type"),
    ("feature_unseen_category_total", "unseen category"),
)


def rows(config: ThresholdsConfig) -> list[Row]:
    p, q = config.prefix, config.quality
    quality, drift, predictions, truth = (
        Row("Input data quality"), Row("Drift against the reference profile"),
        Row("Predictions"), Row("Ground truth"),
    )
    if in_catalog("input_rows_total"):
        quality.panels.append(timeseries(
            "Input rows checked",
            "Rows per second passed through check_inputs, per model and version: the "
            "denominator of every data-quality ratio.",
            "cps",
            [(f"sum by (model, version) ({rate('input_rows_total', p)})", _MV)],
        ))
        kinds = [(n, label) for n, label in _VIOLATIONS if in_catalog(n)]
        if kinds:
            quality.panels.append(timeseries(
                "Data-quality problems per input row",
                "Missing, out-of-range, mistyped and unseen-category values per input row, by "
                "kind. The ModelDataQualityViolations alert fires when their sum stays above "
                f"the red line ({q.violation_ratio:g}) for {q.violation_for}.",
                "percentunit",
                [(
                    f"sum by (model, version) ({rate(n, p)})\n/\n"
                    f"sum by (model, version) ({rate('input_rows_total', p)})",
                    f"{_MV} {label}",
                ) for n, label in kinds],
                thresholds=[(q.violation_ratio, "red")],
            ))
        for name, label in kinds:
            quality.panels.append(timeseries(
                f"Top features: {label} values",
                f"The 10 features with the most {label} values per second. One feature "
                "dominating usually means one upstream field broke.",
                "cps",
                [(f"topk(10, sum by (model, version, feature) ({rate(name, p)}))",
                  _MV + " {{feature}}")],
            ))
    if in_catalog("feature_drift"):
        drift.panels.append(timeseries(
            "Feature drift ($drift_method)",
            "Per-feature drift of the live window against the reference profile (PSI: below "
            "0.1 stable, 0.1-0.25 moderate, above 0.25 major). The red line is the "
            f"ModelFeatureDrift threshold ({q.drift_threshold:g} on {q.drift_method.upper()}).",
            "none",
            [(
                f"topk(15, max by (model, version, feature) "
                f"({selector('feature_drift', p, method='$drift_method')}))",
                _MV + " {{feature}}",
            )],
            width=24,
            thresholds=[(q.drift_threshold, "red")],
        ))
        if in_catalog("prediction_drift"):
            drift.panels.append(timeseries(
                "Prediction drift ($drift_method)",
                "Prediction drift of the live window against the reference profile; it can "
                "move without feature drift when the features miss the real shift. The red "
                f"line is the ModelPredictionDrift threshold ({q.prediction_drift_threshold:g} "
                f"on {q.drift_method.upper()}).",
                "none",
                [(f"max by (model, version) "
                  f"({selector('prediction_drift', p, method='$drift_method')})", _MV)],
                thresholds=[(q.prediction_drift_threshold, "red")],
            ))
        if in_catalog("score_drift"):
            drift.panels.append(timeseries(
                "Score drift ($drift_method)",
                "Drift of the model's confidence scores against the reference profile; it can "
                "move before the predicted classes do. No alert watches it.",
                "none",
                [(f"max by (model, version) "
                  f"({selector('score_drift', p, method='$drift_method')})", _MV)],
            ))
    if in_catalog("predictions_total"):
        predictions.panels.append(timeseries(
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
        if in_catalog("prediction_score"):
            predictions.panels.append(timeseries(
                "Prediction confidence p10 / p50 / p90",
                "Quantiles of the model's confidence scores. A slide towards low scores is an "
                "early warning of drift, before any ground truth arrives.",
                "percentunit",
                [(quantile(q, "prediction_score", p), f"p{int(q * 100)} {_MV}")
                 for q in (0.1, 0.5, 0.9)],
            ))
    if in_catalog("feedback_total"):
        if in_catalog("feedback_accuracy"):
            truth.panels.append(timeseries(
                "Accuracy from feedback",
                "Accuracy over the last feedback window of joined ground-truth labels. The "
                f"ModelAccuracyDrop alert fires when it is in the red (below {q.min_accuracy:g}) "
                f"or {q.max_accuracy_drop:g} under its 1d average.",
                "percentunit",
                [(f"avg by (model, version) ({selector('feedback_accuracy', p)})", _MV)],
                thresholds=[(q.min_accuracy, "green")],
                base_color="red",
            ))
        truth.panels.append(timeseries(
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
    return [quality, drift, predictions, truth]


def build(config: ThresholdsConfig) -> Dashboard:
    prefix = config.prefix
    return dashboard(
        uid=UID,
        title=TITLE,
        description="Input data quality, drift per feature against the reference profile, "
        "prediction and score distributions, and accuracy from late ground truth.",
        tags=["model", "quality", "drift"],
        rows=fill_from_catalog(NAME, rows(config), prefix),
        variables=[
            datasource_variable(),
            *model_variables(prefix),
            custom_variable("drift_method", "Drift method", DRIFT_METHODS,
                            current=config.quality.drift_method),
        ],
    )
