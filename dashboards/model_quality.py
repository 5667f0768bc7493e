"""Model quality: input data quality, drift per feature, predictions, accuracy from feedback.

The drift, data-quality and accuracy panels draw the thresholds of the
alerts that watch them (``quality`` in the thresholds config), and the drift
method variable starts at the method the drift alerts use.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from modelmon.alerting import accuracy
from modelmon.alerting.drift import drift_series
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
FLEET_ROW = "Fleet drift (all replicas)"
FLEET_ACCURACY_ROW = "Fleet accuracy and error (all replicas)"
_MV = "{{model}} {{version}}"
# Data-quality counters shown as problems per input row, by kind.
_VIOLATIONS = (
    ("feature_missing_total", "missing"),
    ("feature_out_of_range_total", "out of range"),
    ("feature_type_errors_total", "wrong type"),
    ("feature_unseen_category_total", "unseen category"),
)


def _fleet(record: str, **matchers: str) -> str:
    """A fleet recording rule's series, filtered by the model variables."""
    parts = ['model=~"$model"', 'version=~"$version"'] + [f'{k}="{v}"' for k, v in matchers.items()]
    return f"{record}{{{','.join(parts)}}}"


def fleet_drift_row(config: ThresholdsConfig) -> Row:
    """Drift computed by the recording rules over every replica, worker and device."""
    p, q = config.prefix, config.quality
    row = Row(FLEET_ROW)
    if not in_catalog("feature_cumulative_bin_values_total", "feature_reference_cumulative_share"):
        return row
    windows = q.drift_windows
    listed = ", ".join(windows)
    row.panels.append(timeseries(
        "Fleet feature drift ($drift_method)",
        f"Drift of each feature over the last {listed} of rows of every replica, worker and "
        "device of a model version, computed by Prometheus from the bin counters "
        f"({drift_series(p, 'feature', windows[0])} and the other windows); the value to "
        "watch for a model served by more than one process. The red line is the "
        f"ModelFeatureDrift threshold ({q.drift_threshold:g} on {q.drift_method.upper()}).",
        "none",
        [(f"topk(15, {_fleet(drift_series(p, 'feature', w), method='$drift_method')})",
          _MV + " {{feature}} " + w) for w in windows],
        width=24,
        thresholds=[(q.drift_threshold, "red")],
    ))
    for kind, threshold in (("prediction", q.prediction_drift_threshold), ("score", None)):
        if not in_catalog(f"{kind}_cumulative_bin_values_total"):
            continue
        alert = (f"The red line is the ModelPredictionDrift threshold ({threshold:g} on "
                 f"{q.drift_method.upper()})." if threshold is not None else "No alert watches it.")
        row.panels.append(timeseries(
            f"Fleet {kind} drift ($drift_method)",
            f"Drift of the {kind}s of every replica over the last {listed} against the "
            f"reference profile ({drift_series(p, kind, windows[0])}, ...). {alert}",
            "none",
            [(_fleet(drift_series(p, kind, w), method="$drift_method"), f"{_MV} {w}")
             for w in windows],
            thresholds=[(threshold, "red")] if threshold is not None else (),
        ))
    counters = [k for k in ("feature", "prediction", "score")
                if in_catalog(f"{k}_cumulative_bin_values_total")]
    row.panels.append(timeseries(
        "Values behind fleet drift per second",
        "Values per second counted into the reference bins across the fleet (the last, "
        "cumulative bin holds them all): drift over a few dozen values is noise.",
        "cps",
        [(
            f"max by (model, version{', feature' if k == 'feature' else ''}) "
            f"(sum by (model, version{', feature' if k == 'feature' else ''}, bin) "
            f"({rate(f'{k}_cumulative_bin_values_total', p)}))",
            _MV + (" {{feature}}" if k == "feature" else f" {k}s"),
        ) for k in counters],
    ))
    return row


def fleet_accuracy_row(config: ThresholdsConfig) -> Row:
    """Accuracy, precision, recall and MAE computed by the recording rules over every
    replica's joined labels."""
    p, q = config.prefix, config.quality
    row = Row(FLEET_ACCURACY_ROW)
    windows, first = q.drift_windows, q.drift_windows[0]
    listed = ", ".join(windows)
    if in_catalog("feedback_total"):
        row.panels.append(timeseries(
            "Fleet accuracy",
            f"Share of the ground-truth labels joined by every replica, worker and device of a "
            f"model version over the last {listed} that the model got right, computed by "
            f"Prometheus from the feedback counters ({accuracy.accuracy_series(p, first)}, ...); "
            "the value to watch for a model served by more than one process. The "
            f"ModelAccuracyDrop alert reads the {first} value: it fires in the red (below "
            f"{q.min_accuracy:g}) or {q.max_accuracy_drop:g} under its longer view.",
            "percentunit",
            [(_fleet(accuracy.accuracy_series(p, w)), f"{_MV} {w}") for w in windows],
            thresholds=[(q.min_accuracy, "green")],
            base_color="red",
        ))
        row.panels.append(timeseries(
            "Labels behind fleet accuracy and MAE",
            f"Ground-truth labels joined across the fleet in each window ({listed}): accuracy "
            f"over a handful of labels is noise; the alert needs {q.min_feedback_labels} in "
            f"the last {first}.",
            "short",
            [(_fleet(accuracy.labels_series(p, w)), f"{_MV} {w}") for w in windows],
        ))
    if in_catalog("feedback_class_labels_total"):
        for title, series, meaning in (
            ("Fleet precision per class", accuracy.precision_series,
             "of the labels predicted as a class, the share that truly were (low: false alarms)"),
            ("Fleet recall per class", accuracy.recall_series,
             "of the labels truly in a class, the share the model found (low: misses)"),
        ):
            row.panels.append(timeseries(
                title,
                f"Over the last {listed} of every replica's labels, {meaning}; from the summed "
                f"per-class label counters ({series(p, first)}, ...). __other__ holds the "
                "classes past max_confusion_classes.",
                "percentunit",
                [(_fleet(series(p, w)), _MV + " {{class}} " + w) for w in windows],
            ))
    if in_catalog("feedback_absolute_error"):
        row.panels.append(timeseries(
            "Fleet mean absolute error",
            f"Mean |y_true - y_pred| of the regression labels joined by every replica over the "
            f"last {listed} ({accuracy.mae_series(p, first)}, ...), in the target's unit.",
            "none",
            [(_fleet(accuracy.mae_series(p, w)), f"{_MV} {w}") for w in windows],
        ))
    return row


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
            "Per-feature drift of each process's own live window against the reference "
            "profile; under gunicorn or with replicas each shows its share of the traffic "
            "only (the fleet row above has the model's drift). PSI: below "
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
                "Accuracy from feedback per process",
                "Each process's accuracy over its own last feedback window of joined labels "
                "(one series per instance; under gunicorn per worker): right for one process, "
                "modelmon serve or an edge device. With replicas the fleet row above has the "
                f"model's accuracy. The red zone is below {q.min_accuracy:g}, as for the "
                "ModelAccuracyDrop alert on the fleet value.",
                "percentunit",
                [(selector("feedback_accuracy", p), _MV + " {{instance}} {{pid}}")],
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
    return [quality, fleet_drift_row(config), drift, predictions,
            fleet_accuracy_row(config), truth]


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
