"""The sample stream: what the agent collects each interval.

Everything in the source registry (model KPIs of ModelMonitors in the same
process, the agent's own edge KPIs) plus the selected plugin collectors, each
sample labelled with ``device`` (and the configured extra labels) and stamped
with the collection time. ``DeviceView`` is also what the local /metrics
serves, so a scrape and remote_write show the same series.

A collection becomes spool records of at most ``max_samples_per_record``
samples; each record is a snappy-compressed remote_write ``WriteRequest``, so
records concatenate into one request without decoding (protobuf merges
concatenated messages by appending repeated fields).

What leaves here meets the remote-write 1.0 rules on series: ``__name__``
and label names valid, labels sorted and unique, no empty label value (an
empty value means "no such label" in Prometheus; a receiver may refuse it),
values valid UTF-8, and a staleness marker for each series that was in the
previous collection and is gone from this one (so a query stops showing it
at once, as after a scrape target loses a series).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric

from .metric_metadata import Metadata, MetricMetadata
from .prompb import LabelSet, SeriesEncoder
from .remote_write import compress

log = logging.getLogger(__name__)

# prometheus_client exports a *_created series per counter/histogram child;
# it is constant and remote-writing it would double the series count.
_CREATED_TYPES = {"counter", "histogram", "summary", "gaugehistogram"}
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_KEYS = 50_000


class DeviceView:
    """Collectors seen through extra labels: ``device`` on every sample that lacks it."""

    def __init__(self, sources: Iterable[Any], labels: Mapping[str, str]) -> None:
        self.sources = list(sources)
        self.labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        extra = self.labels
        for source in self.sources:
            for family in source.collect():
                labelled = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    if all(k in sample.labels for k in extra):
                        labelled.samples.append(sample)
                    else:
                        labelled.samples.append(sample._replace(labels={**extra, **sample.labels}))
                yield labelled


class SampleStream:
    """Turns one collection of ``view`` into spool records."""

    def __init__(self, view: DeviceView, max_samples_per_record: int,
                 metadata: MetricMetadata | None = None) -> None:
        self._view = view
        self._max = max_samples_per_record
        self._encoder = SeriesEncoder()
        # (name, raw labels) -> the series' label set, or None when it cannot be sent.
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], LabelSet | None] = {}
        self._previous: set[LabelSet] = set()
        self._last_ms: int | None = None
        self._refused: set[str] = set()
        # HELP/TYPE/UNIT of what was collected, for the query API's /api/v1/metadata
        # (None: the agent has no query API, and a collection records nothing).
        self.metadata = metadata

    def collect(self, timestamp: float) -> list[tuple[bytes, int]]:
        """(payload, sample count) records for everything collected now, at ``timestamp``."""
        ts_ms = int(timestamp * 1000)
        if ts_ms == self._last_ms:
            return []  # a second collection in the same millisecond would duplicate samples
        self._last_ms = ts_ms
        encode = self._encoder.encode
        label_set = self._label_set
        records: list[tuple[bytes, int]] = []
        chunk: list[bytes] = []
        seen: set[LabelSet] = set()
        families: list[tuple[str, Metadata]] | None = [] if self.metadata is not None else None
        # The view's sources are read directly: the device labels are merged into
        # each series' cached label set, not copied into every sample.
        for source in self._view.sources:
            for family in source.collect():
                if families is not None:
                    families.append((family.name, (family.type, family.documentation,
                                                   family.unit)))
                skip_created = family.type in _CREATED_TYPES
                for sample in family.samples:
                    name = sample.name
                    if skip_created and name.endswith("_created"):
                        continue
                    labels = label_set(name, sample.labels)
                    if labels is None or labels in seen:
                        # A series twice in one collection (two sources, or a
                        # label left out as empty) would be two samples at one
                        # timestamp: a receiver refuses the whole request.
                        continue
                    seen.add(labels)
                    chunk.append(encode(labels, float(sample.value), ts_ms))
                    if len(chunk) >= self._max:
                        records.append((compress(b"".join(chunk)), len(chunk)))
                        chunk = []
        for labels in self._previous - seen:
            chunk.append(self._encoder.encode_stale(labels, ts_ms))
            if len(chunk) >= self._max:
                records.append((compress(b"".join(chunk)), len(chunk)))
                chunk = []
        self._previous = seen
        if self.metadata is not None and families is not None:
            self.metadata.update(families)
        if chunk:
            records.append((compress(b"".join(chunk)), len(chunk)))
        return records

    def _label_set(self, name: str, labels: Mapping[str, str]) -> LabelSet | None:
        raw = (name, tuple(labels.items()))
        try:
            return self._keys[raw]
        except KeyError:
            pass
        if len(self._keys) > _MAX_KEYS:  # churning labels must not grow memory forever
            self._keys.clear()
        # A sample's own labels win over the agent's extra labels, as in DeviceView.
        merged = {**self._view.labels, **labels}
        key: LabelSet | None = None
        bad = _bad_name(name, merged)
        if bad is None:
            key = tuple(sorted(
                [(n, _valid_utf8(v)) for n, v in merged.items() if v != ""] + [("__name__", name)]))
        elif bad not in self._refused and len(self._refused) < 1000:
            self._refused.add(bad)
            log.warning("series %s not sent: %s is not a valid Prometheus name", name, bad)
        self._keys[raw] = key
        return key


def _bad_name(name: str, labels: Mapping[str, str]) -> str | None:
    """The first invalid metric or label name of a series, or None."""
    if not _METRIC_NAME.fullmatch(name):
        return repr(name)
    for label in labels:
        if not _LABEL_NAME.fullmatch(label) or label == "__name__":
            return repr(label)
    return None


def _valid_utf8(value: str) -> str:
    # A lone surrogate cannot be encoded as UTF-8; U+FFFD keeps the series.
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
