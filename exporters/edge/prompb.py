"""The remote_write 1.0 wire messages (``prometheus.WriteRequest`` and friends).

The message classes are built at runtime from a ``FileDescriptorProto``
that mirrors prometheus/prompb ``types.proto`` and ``remote.proto`` (only the
fields remote_write 1.0 uses: labels and float samples). Building them at
runtime needs no ``protoc`` and no generated file to keep in sync; the field
numbers below are the wire contract.

``encode_series`` is the agent's hot path: it writes the same bytes protobuf
would, but caches the encoded labels of each series, which repeat every
interval. ``tests/unit/exporters/edge/test_prompb.py`` checks that both encodings parse
to the same message.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from typing import Any

PACKAGE = "prometheus"
MESSAGES = ("Label", "Sample", "TimeSeries", "WriteRequest")


def _file_descriptor() -> Any:
    from google.protobuf import descriptor_pb2

    _FIELD = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(
        name="modelmon/prompb/remote.proto", package=PACKAGE, syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str | None]) -> None:
        msg = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    opt, rep = _FIELD.LABEL_OPTIONAL, _FIELD.LABEL_REPEATED
    message("Label", ("name", 1, _FIELD.TYPE_STRING, opt, None),
            ("value", 2, _FIELD.TYPE_STRING, opt, None))
    message("Sample", ("value", 1, _FIELD.TYPE_DOUBLE, opt, None),
            ("timestamp", 2, _FIELD.TYPE_INT64, opt, None))
    message("TimeSeries", ("labels", 1, _FIELD.TYPE_MESSAGE, rep, ".prometheus.Label"),
            ("samples", 2, _FIELD.TYPE_MESSAGE, rep, ".prometheus.Sample"))
    # Field 2 is reserved in remote.proto; 3 (metadata) is not sent by modelmon.
    message("WriteRequest",
            ("timeseries", 1, _FIELD.TYPE_MESSAGE, rep, ".prometheus.TimeSeries"))
    return fd


@functools.cache
def _message_classes() -> dict[str, Any]:
    # Built on first use: the agent itself only encodes (with SeriesEncoder),
    # and importing protobuf costs ~7 MB of RSS on a small device.
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in MESSAGES
    }


def __getattr__(name: str) -> Any:
    """``prompb.WriteRequest`` and the other message classes, built on first access."""
    if name in MESSAGES:
        return _message_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

LabelSet = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs including ``__name__``: one series."""


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 on the wire: two's complement in 10 bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _length_delimited(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def _encode_labels(labels: LabelSet) -> bytes:
    return b"".join(
        _length_delimited(0x0A, _length_delimited(0x0A, n.encode()) + _length_delimited(0x12, v.encode()))
        for n, v in labels
    )


_pack_double = struct.Struct("<d").pack
# The two NaNs remote_write carries (prometheus/model/value): the stale marker,
# which a sender MUST use for nothing else, and every other NaN.
STALE_NAN_BITS = 0x7FF0000000000002
NORMAL_NAN_BITS = 0x7FF8000000000001
_STALE_NAN = struct.pack("<Q", STALE_NAN_BITS)
_NORMAL_NAN = struct.pack("<Q", NORMAL_NAN_BITS)


class SeriesEncoder:
    """Encodes ``TimeSeries`` with one sample each, caching label bytes per series.

    Not thread-safe; the agent's collector thread owns one. The cache is
    bounded: it is cleared when it holds more than ``max_cached`` series, so a
    churning label set cannot grow memory without limit.
    """

    def __init__(self, max_cached: int = 20_000) -> None:
        self._labels: dict[LabelSet, bytes] = {}
        self._max_cached = max_cached
        self._ts: int | None = None
        self._ts_bytes = b""

    def encode(self, labels: LabelSet, value: float, timestamp_ms: int) -> bytes:
        """One ``WriteRequest.timeseries`` entry (field 1) holding a single sample;
        any NaN is written as Prometheus's normal NaN, never as the stale marker."""
        return self._encode(labels, _NORMAL_NAN if value != value else _pack_double(value), timestamp_ms)

    def encode_stale(self, labels: LabelSet, timestamp_ms: int) -> bytes:
        """The staleness marker of ``labels`` at ``timestamp_ms``: the series ended."""
        return self._encode(labels, _STALE_NAN, timestamp_ms)

    def _encode(self, labels: LabelSet, value_bytes: bytes, timestamp_ms: int) -> bytes:
        encoded = self._labels.get(labels)
        if encoded is None:
            if len(self._labels) >= self._max_cached:
                self._labels.clear()
            encoded = self._labels[labels] = _encode_labels(labels)
        # A collection shares one timestamp: cache the tail of the sample.
        if timestamp_ms != self._ts:
            self._ts = timestamp_ms
            self._ts_bytes = b"\x10" + _varint(timestamp_ms)
        sample = b"\x09" + value_bytes + self._ts_bytes
        series = encoded + b"\x12" + _varint(len(sample)) + sample
        return b"\x0a" + _varint(len(series)) + series


def encode_write_request(series: Iterable[tuple[LabelSet, Sequence[tuple[float, int]]]]) -> bytes:
    """Serialize (labels, [(value, timestamp_ms), ...]) pairs with the protobuf classes."""
    req = _message_classes()["WriteRequest"]()
    for labels, samples in series:
        ts = req.timeseries.add()
        for name, label_value in labels:
            ts.labels.add(name=name, value=label_value)
        for value, timestamp in samples:
            ts.samples.add(value=value, timestamp=timestamp)
    return bytes(req.SerializeToString())


def decode_write_request(data: bytes) -> list[tuple[LabelSet, list[tuple[float, int]]]]:
    """The inverse of ``encode_write_request`` (for ``edge status``, tests and debugging)."""
    req = _message_classes()["WriteRequest"].FromString(data)
    return [
        (tuple((lb.name, lb.value) for lb in ts.labels),
         [(s.value, s.timestamp) for s in ts.samples])
        for ts in req.timeseries
    ]


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def first_timestamp(write_request: bytes) -> int | None:
    """The timestamp of the first sample in a serialized ``WriteRequest``, or None.

    The agent's records hold one collection each (one timestamp), so this
    orders records without decoding them: it skips the labels of the first
    series and reads its first sample's field 2.
    """
    try:
        if not write_request or write_request[0] != 0x0A:
            return None
        length, pos = _read_varint(write_request, 1)
        end = pos + length
        while pos < end:
            tag, pos = _read_varint(write_request, pos)
            size, pos = _read_varint(write_request, pos)
            if tag == 0x12:  # TimeSeries.samples
                sample_end = pos + size
                while pos < sample_end:
                    field, pos = _read_varint(write_request, pos)
                    if field == 0x09:
                        pos += 8
                    elif field == 0x10:
                        value, pos = _read_varint(write_request, pos)
                        return value - (1 << 64) if value >= 1 << 63 else value
                    else:
                        return None
                return 0  # proto3 leaves a zero timestamp out
            pos += size
    except IndexError:
        return None
    return None
