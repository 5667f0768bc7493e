"""What the edge evaluator supports. Anything else is refused when a rule is
loaded, with a message naming the rule and the construct."""

from __future__ import annotations

RANGE_FUNCTIONS = frozenset({
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear",
    "avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "count_over_time",
    "last_over_time", "present_over_time", "stddev_over_time", "stdvar_over_time",
    "quantile_over_time", "changes", "resets", "absent_over_time",
})
INSTANT_FUNCTIONS = frozenset({
    "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn",
    "clamp", "clamp_min", "clamp_max", "round", "scalar", "vector", "time", "timestamp",
    "absent", "histogram_quantile", "label_replace",
})
FUNCTIONS = RANGE_FUNCTIONS | INSTANT_FUNCTIONS
AGGREGATIONS = frozenset({
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk",
    "quantile",
})


def describe() -> str:
    return ("supported functions: " + ", ".join(sorted(FUNCTIONS))
            + "; aggregations: " + ", ".join(sorted(AGGREGATIONS)))
