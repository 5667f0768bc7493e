"""Rules inside the edge agent: a local window of the device's own samples,
the rule groups evaluated over it on schedule, and their results as spool
records (remote-written like any sample, with their evaluation timestamps).

The agent's collector thread drives it (``observe`` each collection's records,
then ``evaluate_due``), so evaluation needs no thread of its own and always
sees the collection it follows. The window keeps what the rules can reach
(their longest range + offset + the 5 m lookback) and no more.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from modelmon.exporters.edge.prompb import LabelSet, SeriesEncoder
from modelmon.exporters.edge.promql import MemoryStorage, is_stale
from modelmon.exporters.edge.remote_write import compress, decompress
from modelmon.exporters.edge.rules.evaluation import GroupResult, RuleGroupEvaluator
from modelmon.exporters.edge.rules.files import RuleGroup, load_rule_files

_DOUBLE = struct.Struct("<d")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _skip(data: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        size, pos = _varint(data, pos)
        return pos + size
    if wire == 5:
        return pos + 4
    raise ValueError(f"unexpected protobuf wire type {wire}")


def iter_samples(write_request: bytes) -> Iterator[tuple[LabelSet, float, int]]:
    """(labels, value, timestamp ms) of every sample of a serialized ``WriteRequest``
    (bit-exact values: a staleness marker stays one)."""
    data, pos, end = write_request, 0, len(write_request)
    while pos < end:
        key, pos = _varint(data, pos)
        if key != 0x0A:
            pos = _skip(data, pos, key & 7)
            continue
        size, pos = _varint(data, pos)
        series_end = pos + size
        labels: list[tuple[str, str]] = []
        samples: list[tuple[float, int]] = []
        while pos < series_end:
            key, pos = _varint(data, pos)
            size, pos = _varint(data, pos)
            item_end = pos + size
            if key == 0x0A:  # Label
                name = value = ""
                while pos < item_end:
                    field, pos = _varint(data, pos)
                    length, pos = _varint(data, pos)
                    text = data[pos:pos + length].decode()
                    pos += length
                    if field == 0x0A:
                        name = text
                    elif field == 0x12:
                        value = text
                labels.append((name, value))
            elif key == 0x12:  # Sample
                v, t = 0.0, 0
                while pos < item_end:
                    field, pos = _varint(data, pos)
                    if field == 0x09:
                        v = _DOUBLE.unpack_from(data, pos)[0]
                        pos += 8
                    elif field == 0x10:
                        t, pos = _varint(data, pos)
                        if t >= 1 << 63:
                            t -= 1 << 64
                    else:
                        pos = _skip(data, pos, field & 7)
                samples.append((v, t))
            pos = item_end
        key_labels = tuple(sorted(labels))
        for v, t in samples:
            yield key_labels, v, t


class EdgeRuleRunner:
    def __init__(self, groups: Sequence[RuleGroup], evaluation_interval: float,
                 device_labels: Mapping[str, str], max_samples_per_record: int = 2000,
                 query_window: float | None = None) -> None:
        self.storage = MemoryStorage()
        # The query API (and tests) read the window from other threads.
        self.lock = threading.Lock()
        self.device_labels = dict(device_labels)
        self._groups = [
            (RuleGroupEvaluator(g, self.storage, self.device_labels, label_results=True),
             g.interval_ms if g.interval_ms is not None else int(evaluation_interval * 1000))
            for g in groups]
        self._next_ms: list[int | None] = [None] * len(self._groups)
        self.window_ms = max(max((g.lookback_ms for g in groups), default=0) + 60_000,
                             int((query_window or 0) * 1000))
        self._encoder = SeriesEncoder()
        self._max = max_samples_per_record
        self.last_results: list[GroupResult] = []

    @classmethod
    def from_files(cls, patterns: Sequence[str], base_dir: Path | None, evaluation_interval: float,
                   device_labels: Mapping[str, str], query_window: float | None = None
                   ) -> EdgeRuleRunner:
        groups = load_rule_files(patterns, base_dir) if patterns else []
        return cls(groups, evaluation_interval, device_labels, query_window=query_window)

    def observe(self, payloads: Sequence[bytes]) -> None:
        """Add one collection's spool records (snappy ``WriteRequest``s) to the window."""
        with self.lock:
            for payload in payloads:
                for labels, value, t in iter_samples(decompress(payload)):
                    self.storage.append(labels, t, value)

    def evaluate_due(self, now_ms: int) -> list[tuple[bytes, int]]:
        """Evaluate the groups that are due at ``now_ms``; their results as
        (payload, sample count) spool records, device-labelled."""
        chunk: list[bytes] = []
        records: list[tuple[bytes, int]] = []
        results: list[GroupResult] = []
        with self.lock:
            for i, (evaluator, interval_ms) in enumerate(self._groups):
                due = self._next_ms[i]
                # Collections arrive with a little jitter: within half an interval of
                # its time a group is due, so a 10s group on a 10s collection never skips.
                if due is not None and now_ms + interval_ms // 2 < due:
                    continue
                self._next_ms[i] = now_ms + interval_ms if due is None or now_ms - due >= \
                    interval_ms else due + interval_ms
                result = evaluator.evaluate(now_ms)
                results.append(result)
                for labels, value in result.samples:
                    labels = self._device_labelled(labels)
                    chunk.append(self._encoder.encode_stale(labels, now_ms) if is_stale(value)
                                 else self._encoder.encode(labels, value, now_ms))
                    if len(chunk) >= self._max:
                        records.append((compress(b"".join(chunk)), len(chunk)))
                        chunk = []
            self.storage.retain(now_ms - self.window_ms)
        if chunk:
            records.append((compress(b"".join(chunk)), len(chunk)))
        self.last_results = results
        return records

    def _device_labelled(self, labels: LabelSet) -> LabelSet:
        # Like Prometheus's external labels: added where the result lacks them, so a
        # fleet's recording results and ALERTS stay apart in the cloud.
        present = {n for n, _ in labels}
        missing = [(n, v) for n, v in self.device_labels.items() if n not in present and v]
        return tuple(sorted((*labels, *missing))) if missing else labels
