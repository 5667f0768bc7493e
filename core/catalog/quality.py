"""Model-quality KPIs: input data quality, drift, predictions, late ground truth.

Everything here is computed inside the model server (or ``modelmon serve``)
by ``modelmon.exporters.quality``; docs/quality.md explains the methods and
thresholds in more depth than the help texts can.
"""

from __future__ import annotations

from modelmon.kpi import KPI

# Bin shares are floored at this before PSI's logarithm, so an empty bin gives
# a large but finite term. One value for the in-process statistic and the
# fleet recording rules, so both agree on the same rows.
PSI_EPSILON = 1e-4

# The previous_bin of the first bin: a value, not an empty label, so that every
# series carries the catalog's labels.
NO_PREVIOUS_BIN = "none"

_ML = ("model", "version")
_FEATURE = (*_ML, "feature")

# Confidence scores and probabilities live in [0, 1].
SCORE_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
)
# Regression outputs have no natural scale: a log scale from 0 as default; set
# ModelMonitor(buckets={"prediction_value": [...]}) for your target (negative
# bounds for signed targets are fine: OpenMetrics scrapes then drop _sum/_count,
# see modelmon.exposition). With these defaults outputs <= 0 count in le="0".
PREDICTION_VALUE_BUCKETS: tuple[float, ...] = (
    0.0, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1e3, 1e4, 1e5,
)
ABSOLUTE_ERROR_BUCKETS: tuple[float, ...] = (
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 100.0, 1e3, 1e4,
)
# Ground truth arrives seconds (clicks) to weeks (fraud chargebacks) later.
LABEL_DELAY_BUCKETS: tuple[float, ...] = (
    1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 3 * 86400.0,
    7 * 86400.0, 30 * 86400.0,
)

_PSI_MEANING = (
    "PSI (population stability index, method='psi'): below 0.1 the feature is stable, "
    "0.1-0.25 is a moderate shift worth a look, above 0.25 a major shift that usually hurts "
    "accuracy. JS (method='js') is the Jensen-Shannon distance in [0, 1] (base 2); 0.1 is a "
    "noticeable shift. KS (method='ks', numeric only) is the largest gap between the reference "
    "and live cumulative distributions in [0, 1], computed on the reference bins: it "
    "under-estimates the exact two-sample KS by at most the largest bin share (see "
    "docs/quality.md)."
)

KPIS: tuple[KPI, ...] = (
    # --- input data quality -------------------------------------------------
    KPI(
        "input_rows_total", "counter", "rows", _ML,
        "Rows passed to check_inputs (one per request row).",
        "The denominator of every data-quality ratio: divide the feature_* counters by it to "
        "get the share of rows with a problem.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "feature_missing_total", "counter", "values", _FEATURE,
        "Missing feature values (None, NaN, null) seen by check_inputs.",
        "A missing rate well above the profile's training missing rate means an upstream "
        "pipeline or client stopped filling the feature; the model then sees imputed or "
        "default values it was not trained on.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "feature_out_of_range_total", "counter", "values", _FEATURE,
        "Numeric feature values outside the [min, max] range seen in training (or +-inf).",
        "The model extrapolates on these values. A sudden rise usually means a unit change "
        "(cents vs euros, ms vs s) or a broken sensor.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "feature_type_errors_total", "counter", "values", _FEATURE,
        "Feature values of the wrong type (a string in a numeric feature, a list, ...).",
        "Non-zero means a client sends a different schema than the model expects; these "
        "values are excluded from drift.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "feature_unseen_category_total", "counter", "values", _FEATURE,
        "Categorical feature values never seen in the training data.",
        "New categories (a new country, product, device) the model has no learned signal "
        "for. Counted only for features whose full training vocabulary is in the profile.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "schema_violations_total", "counter", "violations", (*_ML, "kind"),
        "Input schema problems per row: kind is missing_column, unexpected_column, "
        "column_count or unreadable_input.",
        "The request does not match the profile's feature list: a client sends an old or a "
        "new schema. missing_column rows are not checked for that feature.",
        "quality", on_device=True, dashboard="model-quality", row="Input data quality",
    ),
    KPI(
        "quality_check_errors_total", "counter", "errors", (*_ML, "operation"),
        "Internal errors of modelmon's quality checks, swallowed so the model server never "
        "fails because of monitoring.",
        "Should stay at 0; a non-zero value means a modelmon bug or an input it cannot "
        "read. The model server log has the traceback.",
        "quality",
        dashboard="model-quality", row="Input data quality",
    ),
    # --- drift ------------------------------------------------------------------
    KPI(
        "feature_drift", "gauge", "ratio", (*_FEATURE, "method"),
        "Drift of a feature's live distribution over the sliding window against the "
        "reference profile, by method (psi, js, ks).",
        _PSI_MEANING + " Only features in the drift allowlist (or the top-K by importance) "
        "get a series, to bound cardinality. NaN until the window has rows.",
        "quality", on_device=True,
        dashboard="model-quality", row="Drift against the reference profile",
    ),
    KPI(
        "prediction_drift", "gauge", "ratio", (*_ML, "method"),
        "Drift of the predicted classes or values over the sliding window against the "
        "reference profile's predictions, by method (psi, js, ks).",
        "Prediction drift without feature drift often means the world changed in a way the "
        "features do not capture; with feature drift it confirms the model reacts to it. "
        "Same scale as feature_drift: PSI 0.1 moderate, 0.25 major.",
        "quality", on_device=True,
        dashboard="model-quality", row="Drift against the reference profile",
    ),
    KPI(
        "score_drift", "gauge", "ratio", (*_ML, "method"),
        "Drift of the confidence scores over the sliding window against the reference "
        "profile's scores, by method (psi, js, ks).",
        "A model that grows less confident (scores sliding toward 0.5) is seeing inputs unlike "
        "its training data, before any ground truth arrives.",
        "quality", dashboard="model-quality", row="Drift against the reference profile",
    ),
    KPI(
        "drift_window_rows", "gauge", "rows", _ML,
        "Rows in the current drift window.",
        "How much data the drift gauges rest on: drift over a few dozen rows is noise. "
        "Alert rules require a minimum here.",
        "quality", on_device=True,
        dashboard="model-quality", row="Drift against the reference profile",
    ),
    # --- fleet drift: what aggregates across replicas, workers and devices -------
    KPI(
        "feature_cumulative_bin_values_total", "counter", "values", (*_FEATURE, "bin", "previous_bin"),
        "Values of a drift feature that fell in its reference bins 0..bin (cumulative, like a "
        "histogram's le buckets); previous_bin names the bin before (none for bin 0).",
        "Summed over every replica and worker, these counts give the fleet's live histogram: "
        "the recording rules modelmon:feature_drift:<window> compute PSI, JS and KS from them "
        "against feature_reference_cumulative_share. One series per bin of the reference "
        "profile (10 by default) and drift feature; exported at 0 before the first row.",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
    ),
    KPI(
        "feature_reference_cumulative_share", "gauge", "ratio",
        (*_FEATURE, "bin", "previous_bin", "kind"),
        "Share of the reference profile's values of a drift feature in bins 0..bin; kind is "
        "numeric or categorical (KS is computed for numeric features only).",
        "The training distribution the fleet drift rules compare against; constant for a "
        "model version (one profile per version).",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
        multiprocess_mode="max",
    ),
    KPI(
        "prediction_cumulative_bin_values_total", "counter", "predictions",
        (*_ML, "bin", "previous_bin"),
        "Predictions that fell in the reference profile's prediction bins 0..bin (cumulative).",
        "The fleet's live prediction histogram behind modelmon:prediction_drift:<window>.",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
    ),
    KPI(
        "prediction_reference_cumulative_share", "gauge", "ratio",
        (*_ML, "bin", "previous_bin", "kind"),
        "Share of the reference profile's predictions in bins 0..bin.",
        "The reference prediction distribution of the fleet drift rules.",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
        multiprocess_mode="max",
    ),
    KPI(
        "score_cumulative_bin_values_total", "counter", "predictions",
        (*_ML, "bin", "previous_bin"),
        "Confidence scores that fell in the reference profile's score bins 0..bin (cumulative).",
        "The fleet's live score histogram behind modelmon:score_drift:<window>.",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
    ),
    KPI(
        "score_reference_cumulative_share", "gauge", "ratio",
        (*_ML, "bin", "previous_bin", "kind"),
        "Share of the reference profile's confidence scores in bins 0..bin.",
        "The reference score distribution of the fleet drift rules.",
        "quality", dashboard="model-quality", row="Fleet drift (all replicas)",
        multiprocess_mode="max",
    ),
    # --- predictions ------------------------------------------------------------
    KPI(
        "predictions_total", "counter", "predictions", (*_ML, "class"),
        "Predicted classes (classification); the number of classes is capped, the rest "
        "counted as __other__.",
        "The model's output mix. A class share that moves while traffic is steady is "
        "prediction drift you can see directly.",
        "quality", dashboard="model-quality", row="Predictions",
    ),
    KPI(
        "prediction_score", "histogram", "ratio", _ML,
        "Confidence of each prediction: the score given, or the top class probability.",
        "Low-confidence predictions are the ones most likely wrong; a shift of mass toward "
        "low scores is an early warning of drift.",
        "quality", buckets=SCORE_BUCKETS, dashboard="model-quality", row="Predictions",
    ),
    KPI(
        "prediction_value", "histogram", "value", _ML,
        "Regression outputs (configure buckets to your target's scale).",
        "The distribution of predicted values; compare quantiles with the training target.",
        "quality", buckets=PREDICTION_VALUE_BUCKETS, dashboard="model-quality", row="Predictions",
    ),
    # --- late ground truth --------------------------------------------------------
    KPI(
        "feedback_total", "counter", "labels", (*_ML, "outcome"),
        "Ground-truth labels joined with their prediction: outcome is correct or incorrect "
        "(classification) or observed (regression).",
        "How much ground truth arrives; the correct share is the accuracy over any range "
        "you choose in PromQL. Summed over every replica, worker and device, it gives the "
        "recording rules modelmon:feedback_accuracy:<window> and modelmon:feedback_labels:<window>.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_confusion_total", "counter", "labels", (*_ML, "true_class", "predicted_class"),
        "Confusion-matrix counts of joined feedback (up to 20 classes, the rest __other__).",
        "Which classes the model confuses; a growing off-diagonal cell points at the class "
        "whose inputs changed.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_class_labels_total", "counter", "labels", (*_ML, "class", "outcome"),
        "Joined classification labels per class: outcome is true_positive (predicted and true "
        "class are this one), false_positive (predicted as this class, truly another) or "
        "false_negative (truly this class, predicted as another); up to max_confusion_classes "
        "classes, the rest __other__.",
        "Precision is true_positive / (true_positive + false_positive), recall true_positive / "
        "(true_positive + false_negative) over any range. Summed over the fleet it gives the "
        "recording rules modelmon:feedback_precision:<window> and "
        "modelmon:feedback_recall:<window>: 3 series per class, where the confusion matrix "
        "holds one per pair of classes.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_accuracy", "gauge", "ratio", _ML,
        "Accuracy over the last feedback window of joined labels.",
        "The quality users get, measured once the truth is known. Compare with the "
        "validation accuracy recorded at training time. One process's labels only: with "
        "replicas or workers watch modelmon:feedback_accuracy:<window> (docs/quality.md).",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_precision", "gauge", "ratio", (*_ML, "class"),
        "Precision per class over the last feedback window.",
        "Of the rows predicted as this class, the share that truly were: low precision is "
        "false alarms.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_recall", "gauge", "ratio", (*_ML, "class"),
        "Recall per class over the last feedback window.",
        "Of the rows truly in this class, the share the model found: low recall is misses "
        "(fraud not caught, churners not flagged).",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_absolute_error", "histogram", "value", _ML,
        "Absolute error |y_true - y_pred| of joined regression feedback.",
        "The distribution of errors: a fat tail means a minority of inputs gets very bad "
        "predictions even when the mean looks fine. Its _sum and _count over the fleet give "
        "the recording rule modelmon:feedback_mae:<window>.",
        "feedback", buckets=ABSOLUTE_ERROR_BUCKETS, dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_mae", "gauge", "value", _ML,
        "Mean absolute error over the last feedback window (regression).",
        "The regression counterpart of accuracy, in the target's unit.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_window_labels", "gauge", "labels", _ML,
        "Joined labels in the feedback window behind accuracy, precision, recall and MAE.",
        "Accuracy over 5 labels is noise. One process's window only: the accuracy alert "
        "requires a minimum of the fleet's modelmon:feedback_labels:<window> instead.",
        "feedback",
        dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_label_delay_seconds", "histogram", "seconds", _ML,
        "Time between a prediction and the arrival of its ground truth.",
        "How late you learn about quality problems: accuracy gauges describe predictions "
        "made this long ago.",
        "feedback", buckets=LABEL_DELAY_BUCKETS, dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_unmatched_total", "counter", "labels", _ML,
        "Ground-truth labels whose request_id matched no stored prediction (unknown, "
        "already labelled, or evicted).",
        "A high share means request ids do not line up between prediction and feedback, "
        "or the store's TTL / max entries are too small for your label delay.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_store_evictions_total", "counter", "entries", (*_ML, "reason"),
        "Stored predictions dropped before their ground truth arrived: reason is ttl, "
        "max_entries, queue_full or write_error.",
        "Evicted predictions can never be joined. ttl/max_entries: raise the limits if labels "
        "arrive later than the store keeps predictions; queue_full/write_error: the store "
        "cannot keep up or its disk fails.",
        "feedback", dashboard="model-quality", row="Ground truth",
    ),
    KPI(
        "feedback_store_entries", "gauge", "entries", _ML,
        "Predictions waiting in the feedback store for their ground truth.",
        "Grows with traffic times label delay; bounded by the store's max entries.",
        "feedback", dashboard="model-quality", row="Ground truth", multiprocess_mode="max",
    ),
)
