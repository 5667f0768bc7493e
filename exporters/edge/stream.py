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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric

from .prompb import LabelSet, SeriesEncoder
from .remote_write import compress

# prometheus_client exports a *_created series per counter/histogram child;
# it is constant and remote-writing it would double the series count.
_CREATED_TYPES = {"counter", "histogram", "summary", "gaugehistogram"}


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

    def __init__(self, view: DeviceView, max_samples_per_record: int) -> None:
        self._view = view
        self._max = max_samples_per_record
        self._encoder = SeriesEncoder()
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], LabelSet] = {}

    def collect(self, timestamp: float) -> list[tuple[bytes, int]]:
        """(payload, sample count) records for everything collected now, at ``timestamp``."""
        ts_ms = int(timestamp * 1000)
        encode = self._encoder.encode
        label_set = self._label_set
        records: list[tuple[bytes, int]] = []
        chunk: list[bytes] = []
        # The view's sources are read directly: the device labels are merged into
        # each series' cached label set, not copied into every sample.
        for source in self._view.sources:
            for family in source.collect():
                skip_created = family.type in _CREATED_TYPES
                for sample in family.samples:
                    name = sample.name
                    if skip_created and name.endswith("_created"):
                        continue
                    chunk.append(encode(label_set(name, sample.labels), float(sample.value), ts_ms))
                    if len(chunk) >= self._max:
                        records.append((compress(b"".join(chunk)), len(chunk)))
                        chunk = []
        if chunk:
            records.append((compress(b"".join(chunk)), len(chunk)))
        return records

    def _label_set(self, name: str, labels: Mapping[str, str]) -> LabelSet:
        raw = (name, tuple(labels.items()))
        key = self._keys.get(raw)
        if key is None:
            if len(self._keys) > 50_000:  # churning labels must not grow memory forever
                self._keys.clear()
            # A sample's own labels win over the agent's extra labels, as in DeviceView.
            merged = {**self._view.labels, **labels, "__name__": name}
            key = self._keys[raw] = tuple(sorted(merged.items()))
        return key
