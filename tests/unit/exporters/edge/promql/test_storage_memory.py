"""The rules' window is compact: 16 bytes a sample, values bit-exact."""

from __future__ import annotations

import struct
import tracemalloc

from modelmon.exporters.edge.prompb import STALE_NAN_BITS, SeriesEncoder, WriteRequestReader
from modelmon.exporters.edge.promql import STALE_NAN, MemoryStorage, compile_expr


def test_a_sample_costs_about_16_bytes_in_the_window() -> None:
    series, collections = 100, 120  # 20 min at 10 s
    labels = [(("__name__", "x"), ("i", str(i))) for i in range(series)]
    encoder, reader = SeriesEncoder(), WriteRequestReader()

    def collection(t_ms: int) -> bytes:
        return b"".join(encoder.encode(key, t_ms / 1e4 + i, t_ms) for i, key in enumerate(labels))

    storage = MemoryStorage()
    for key, value, t_ms in reader.samples(collection(0)):  # the series and caches exist
        storage.append(key, t_ms, value)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for c in range(1, collections + 1):  # as the agent's window reads its collections
            for key, value, t_ms in reader.samples(collection(1_700_000_000_000 + c * 10_000)):
                storage.append(key, t_ms, value)
        per_sample = (tracemalloc.get_traced_memory()[0] - before) / (series * collections)
    finally:
        tracemalloc.stop()
    # A float object, an int object and two list slots per sample were 72 bytes.
    assert per_sample < 24, per_sample
    got = compile_expr("sum(rate(x[20m]))").evaluate(storage, 1_700_000_000_000 + 1_200_000)
    assert isinstance(got, list) and len(got) == 1


def test_series_appended_one_after_the_other_share_timestamps_too() -> None:
    storage = MemoryStorage()
    for i in range(50):
        storage.append((("__name__", "x"), ("i", str(i))), 0, 0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(50):  # a backfill's or a test's order: each series' whole range
            for c in range(1, 241):
                storage.append((("__name__", "x"), ("i", str(i))), 1_700_000_000_000 + c * 10_000,
                               float(c))
        per_sample = (tracemalloc.get_traced_memory()[0] - before) / (50 * 240)
    finally:
        tracemalloc.stop()
    assert per_sample < 24, per_sample
    # The shared timestamps go with the samples that used them.
    for end in range(1_700_000_000_000, 1_700_000_000_000 + 50 * 3_600_000, 60_000):
        storage.append((("__name__", "x"), ("i", "0")), end, 1.0)
        storage.retain(end - 600_000)
    assert len(storage._times) <= 2 * 11 + 64


def test_the_window_keeps_the_staleness_marker_bit_for_bit() -> None:
    storage = MemoryStorage()
    storage.append([("__name__", "a")], 0, 1.0)
    storage.append([("__name__", "a")], 10_000, STALE_NAN)
    (series,) = storage.series()
    assert struct.unpack("<Q", struct.pack("<d", series.values[1]))[0] == STALE_NAN_BITS
    assert series.stale_markers == 1
