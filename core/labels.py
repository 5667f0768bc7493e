"""Label values: valid characters, bounded cardinality, a series budget.

A label whose values come from outside (model names on /ingest, exception
types, class names) could carry characters no consumer accepts or create
unbounded series and take Prometheus down. Three mechanisms, all applied by
``MetricSet`` (modelmon.metrics) to every series it creates:

- ``label_value_problem`` / ``clean_label_value``: a label value is text a
  strict consumer takes. Unpaired surrogates cannot be encoded as UTF-8 (one
  such value made every later scrape fail); control characters (C0, C1, NUL),
  format characters (bidi overrides such as U+202E, zero-width characters)
  and line/paragraph separators render misleadingly or break line-based
  parsers. Entry points that can refuse (``POST /ingest``) refuse with the
  field's name; the others (the Python API inside a model server) replace
  each such character with U+FFFD and count it in
  ``modelmon_label_values_replaced_total{metric,label}``: they never raise.
- ``LabelLimiter``: each (metric, label) pair accepts at most ``max_values``
  distinct values; the rest are reported as ``__other__`` and counted in
  ``modelmon_label_overflow_total{metric,label}``.
- ``SeriesBudget``: the per-label cap does not bound the product of labels
  (200 models x 200 versions). The budget caps the series of the whole
  MetricSet (one model server); a new series beyond it goes to an overflow
  series whose free-text labels read ``__other__``, counted in
  ``modelmon_series_budget_exceeded_total{metric}``. Memory and /metrics
  render time are then bounded by the budget whatever the input.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable

OTHER = "__other__"
REPLACEMENT = "\ufffd"

# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides and
# isolates, zero-width characters, BOM); Cs: surrogates (unencodable when
# unpaired, and str holds no paired ones); Zl/Zp: line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

DEFAULT_MAX_SERIES = 5000

# Labels whose values the code picks from a small fixed set: an overflow
# series keeps them so that, say, errors stay apart from successes. Every
# other label (model, version, exception, class, feature, ...) reads
# __other__ in an overflow series.
ENUM_LABELS = frozenset({
    "outcome", "method", "status", "direction", "kind", "reason", "state", "result",
    "operation", "period", "metric", "label", "collector", "sink", "processor",
})


def _bad_char(ch: str) -> bool:
    return unicodedata.category(ch) in _FORBIDDEN_CATEGORIES


def label_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a label value, or None when it can."""
    # isprintable() is False for every forbidden category (and a few allowed
    # ones, such as non-ASCII spaces): the per-character check runs only then.
    if value.isprintable():
        return None
    for i, ch in enumerate(value):
        if _bad_char(ch):
            kind = "an unpaired surrogate" if "\ud800" <= ch <= "\udfff" else (
                "a control or format character"
            )
            return f"contains {kind} (U+{ord(ch):04X}) at position {i}; send printable text"
    return None


# Longest string an event sent to /ingest may carry in a label-bound field.
MAX_EVENT_STRING = 200


def event_text_problem(value: object) -> str | None:
    """Why ``value`` cannot be an event's label-bound text (a non-empty printable
    string of at most MAX_EVENT_STRING characters), or None when it can. Both
    /ingest parsers (inference and quality events) put it after the field name."""
    if not isinstance(value, str) or not value or len(value) > MAX_EVENT_STRING:
        return (f"expected a non-empty string of at most {MAX_EVENT_STRING} characters, "
                f"got {safe_text(value)}")
    return label_value_problem(value)


def clean_label_value(value: str) -> str:
    """``value`` with each forbidden character replaced by U+FFFD."""
    if value.isprintable():
        return value
    return "".join(REPLACEMENT if _bad_char(ch) else ch for ch in value)


def safe_text(value: object, limit: int = 60) -> str:
    """A short, ASCII rendering of a client's value for an error message.

    Strings come back in single quotes with every non-ASCII or unprintable
    character and both quote characters escaped, so the message can be JSON
    encoded, printed and split at the first ``': '``; huge values and
    containers are not echoed back.
    """
    if isinstance(value, str):
        inner = value.encode("unicode_escape").decode("ascii")
        inner = inner.replace("'", "\\x27").replace('"', "\\x22")
        if len(inner) > limit - 2:
            inner = inner[: limit - 5] + "..."
        return f"'{inner}'"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "an integer too large"
    text = ascii(value) if value is None or isinstance(value, int | float) else (
        f"a {type(value).__name__}"
    )
    return text[:limit]


class LabelLimiter:
    def __init__(self, max_values: int, on_overflow: Callable[[str, str], None]) -> None:
        if max_values < 1:
            raise ValueError(f"max_label_values must be at least 1, got {max_values}")
        self.max_values = max_values
        self._on_overflow = on_overflow
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    def limit(self, metric: str, label: str, value: str) -> str:
        """``value`` if it is known or fits under the cap, else ``__other__``."""
        seen = self._seen.get((metric, label))
        # Fast path without the lock: set membership is atomic in CPython.
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault((metric, label), set())
            if value in seen:
                return value
            if len(seen) < self.max_values:
                seen.add(value)
                return value
        self._on_overflow(metric, label)
        return OTHER


class SeriesBudget:
    """How many series a MetricSet may hold; a histogram child counts every bucket.

    ``admit(cost)`` reserves room for a new series and answers False when the
    budget is spent. Overflow series (``admit_overflow``) may use a reserve of
    a tenth of the budget on top, so that errors and successes of unknown
    models stay apart; past that everything folds into one all-``__other__``
    series per metric, which is bounded by the catalog.
    """

    def __init__(self, max_series: int) -> None:
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
            raise ValueError(f"max_series must be a positive integer, got {max_series!r}")
        self.max_series = max_series
        self.used = 0
        self._lock = threading.Lock()

    @property
    def reserve(self) -> int:
        return max(100, self.max_series // 10)

    def room_for(self, cost: int) -> bool:
        """Whether ``cost`` more series fit, without reserving them."""
        return self.used + cost <= self.max_series

    def admit(self, cost: int) -> bool:
        with self._lock:
            if self.used + cost > self.max_series:
                return False
            self.used += cost
            return True

    def admit_overflow(self, cost: int) -> bool:
        with self._lock:
            if self.used + cost > self.max_series + self.reserve:
                return False
            self.used += cost
            return True

    def charge(self, cost: int) -> None:
        """Count series that are always admitted (the all-__other__ ones)."""
        with self._lock:
            self.used += cost
