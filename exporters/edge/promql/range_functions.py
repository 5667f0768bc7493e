"""Functions over a range vector, one series' window at a time.

Each takes the window's timestamps (ms) and values (staleness markers already
removed) and returns a value or None (no output for this series). The
arithmetic follows Prometheus 2.42's ``promql/functions.go`` operation by
operation, Kahan sums included, so results agree to the last bits.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence

from modelmon.exporters.edge.promql.aggregations import quantile


def extrapolated_rate(times: Sequence[int], values: Sequence[float], range_start: int,
                      range_end: int, range_ms: int, is_counter: bool, is_rate: bool
                      ) -> float | None:
    """``extrapolatedRate``: rate/increase/delta with counter resets and Prometheus's
    extrapolation to the window's edges (never below a counter's zero point)."""
    if len(values) < 2:
        return None
    result = values[-1] - values[0]
    # Most windows hold no reset: checked at C speed, the loop only runs where one is.
    if is_counter and not all(map(operator.le, values, itertools.islice(values, 1, None))):
        prev = values[0]
        for cur in values[1:]:
            if cur < prev:
                result += prev
            prev = cur
    return extrapolate(result, times[0], times[-1], values[0], len(values), range_start,
                       range_end, range_ms, is_counter, is_rate)


def extrapolate(result: float, first_ms: int, last_ms: int, first_value: float, count: int,
                range_start: int, range_end: int, range_ms: int, is_counter: bool,
                is_rate: bool) -> float:
    """The second half of ``extrapolatedRate``: ``result`` (last - first, resets
    added) over ``count`` >= 2 samples from ``first_ms`` to ``last_ms``, extrapolated."""
    duration_to_start = (first_ms - range_start) / 1000
    duration_to_end = (range_end - last_ms) / 1000
    sampled_interval = (last_ms - first_ms) / 1000
    average_between = sampled_interval / (count - 1)
    if is_counter and result > 0 and first_value >= 0:
        duration_to_zero = sampled_interval * (first_value / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average_between * 1.1
    extrapolate_to = sampled_interval
    extrapolate_to += duration_to_start if duration_to_start < threshold else average_between / 2
    extrapolate_to += duration_to_end if duration_to_end < threshold else average_between / 2
    factor = extrapolate_to / sampled_interval
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def instant_value(times: Sequence[int], values: Sequence[float], is_rate: bool) -> float | None:
    """``irate`` / ``idelta``: the last two samples."""
    if len(values) < 2:
        return None
    last, previous = values[-1], values[-2]
    result = last if is_rate and last < previous else last - previous
    interval = times[-1] - times[-2]
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def _avg(values: Sequence[float]) -> float:
    mean = c = count = 0.0
    for v in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _sum(values: Sequence[float]) -> float:
    total = c = 0.0
    for v in values:
        total, c = kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _max(values: Sequence[float]) -> float:
    best = values[0]
    for v in values:
        if v > best or math.isnan(best):
            best = v
    return best


def _min(values: Sequence[float]) -> float:
    best = values[0]
    for v in values:
        if v < best or math.isnan(best):
            best = v
    return best


def _stdvar(values: Sequence[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in values:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _changes(values: Sequence[float]) -> float:
    changes = 0
    prev = values[0]
    for cur in values[1:]:
        if cur != prev and not (math.isnan(cur) and math.isnan(prev)):
            changes += 1
        prev = cur
    return float(changes)


def _resets(values: Sequence[float]) -> float:
    resets = 0
    prev = values[0]
    for cur in values[1:]:
        if cur < prev:
            resets += 1
        prev = cur
    return float(resets)


def linear_regression(times: Sequence[int], values: Sequence[float], intercept_time: int
                      ) -> tuple[float, float]:
    n = sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = values[0]
    const_y = True
    # kahan_inc inlined four times (the same operations, in the same order): deriv()
    # runs over every sample of its window.
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_time) / 1e3
        s = sum_x + x
        c_x += ((sum_x - s) + x) if abs(sum_x) >= abs(x) else ((x - s) + sum_x)
        sum_x = s
        s = sum_y + v
        c_y += ((sum_y - s) + v) if abs(sum_y) >= abs(v) else ((v - s) + sum_y)
        sum_y = s
        xv = x * v
        s = sum_xy + xv
        c_xy += ((sum_xy - s) + xv) if abs(sum_xy) >= abs(xv) else ((xv - s) + sum_xy)
        sum_xy = s
        xx = x * x
        s = sum_x2 + xx
        c_x2 += ((sum_x2 - s) + xx) if abs(sum_x2) >= abs(xx) else ((xx - s) + sum_x2)
        sum_x2 = s
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = cov_xy / var_x
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def deriv(times: Sequence[int], values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    return linear_regression(times, values, times[0])[0]


def predict_linear(times: Sequence[int], values: Sequence[float], eval_ms: int,
                   duration: float) -> float | None:
    if len(values) < 2:
        return None
    slope, intercept = linear_regression(times, values, eval_ms)
    return slope * duration + intercept


OVER_TIME: dict[str, Callable[[Sequence[float]], float]] = {
    "avg_over_time": _avg,
    "sum_over_time": _sum,
    "max_over_time": _max,
    "min_over_time": _min,
    "count_over_time": lambda values: float(len(values)),
    "last_over_time": lambda values: values[-1],
    "present_over_time": lambda values: 1.0,
    "stdvar_over_time": _stdvar,
    "stddev_over_time": lambda values: math.sqrt(_stdvar(values)),
    "changes": _changes,
    "resets": _resets,
}


def quantile_over_time(q: float, values: Sequence[float]) -> float:
    return quantile(q, list(values))
