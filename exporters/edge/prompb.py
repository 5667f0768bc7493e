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
from collections.abc import Iterable, Iterator, Sequence
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
_unpack_double = struct.Struct("<d").unpack_from
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


class WriteRequestReader:
    """The samples of serialized ``WriteRequest`` messages, read without the protobuf library.

    The rules' window reads every collection the agent spools; the protobuf
    classes would load the protobuf runtime into the agent (4.5 MB of its RSS
    when they did, against a 40 MB goal). This reads the wire format itself:
    fields in any order, unknown fields skipped, proto3 defaults for absent
    ones, values bit-exact (a staleness marker stays one). A series' label bytes
    repeat every interval, so their sorted label set is cached, bounded like
    ``SeriesEncoder``'s. Not thread-safe; one reader per caller.
    ``tests/unit/exporters/edge/test_prompb.py`` checks it against protobuf.
    """

    def __init__(self, max_cached: int = 20_000) -> None:
        self._labels: dict[bytes, LabelSet] = {}
        self._max_cached = max_cached

    def samples(self, data: bytes) -> list[tuple[LabelSet, float, int]]:
        """(sorted labels, value, timestamp ms) of every sample, in message order;
        ``ValueError`` (and no sample) for bytes that are not a ``WriteRequest``."""
        try:
            return self._samples(data)
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"not a remote_write WriteRequest ({exc})") from None

    def _samples(self, data: bytes) -> list[tuple[LabelSet, float, int]]:
        out: list[tuple[LabelSet, float, int]] = []
        read = _read_varint
        end = len(data)
        pos = 0
        while pos < end:
            tag, pos = read(data, pos)
            if tag != 0x0A:  # not WriteRequest.timeseries (metadata, ...)
                pos = _skip(data, pos, tag)
                continue
            size, pos = read(data, pos)
            series_end = pos + size
            # The labels' bytes: one span when they are adjacent (always, from our
            # encoder), else the pieces.
            first = last = -1
            pieces: list[bytes] | None = None
            samples: list[tuple[float, int]] = []
            while pos < series_end:
                start = pos
                tag = data[pos]
                if tag < 0x80:
                    pos += 1
                else:  # a tag in more bytes than it needs (0x8A 0x00): protobuf reads it
                    tag, pos = read(data, pos)
                if tag == 0x0A or tag == 0x12:  # TimeSeries.labels / .samples
                    size = data[pos]
                    if size < 0x80:
                        pos += 1
                    else:
                        size, pos = read(data, pos)
                    field_end = pos + size
                    if field_end > series_end:
                        raise IndexError("truncated field")
                    if tag == 0x12:
                        samples.append(_sample(data, pos, field_end))
                    else:
                        if first < 0:
                            first = start
                        elif start != last:
                            pieces = (pieces or [data[first:last]]) + [data[start:field_end]]
                        elif pieces is not None:
                            pieces[-1] += data[start:field_end]
                        last = field_end
                    pos = field_end
                else:  # exemplars, histograms: not remote_write 1.0 float samples
                    pos = _skip(data, pos, tag)
            if pos != series_end or pos > end:
                raise IndexError("field past the end of its series")
            labels = self._label_set(data[first:last] if pieces is None else b"".join(pieces))
            out.extend((labels, value, timestamp) for value, timestamp in samples)
        if pos != end:
            raise IndexError("field past the end of the message")
        return out

    def _label_set(self, key: bytes) -> LabelSet:
        """The sorted label set of a series' label fields (their bytes)."""
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= self._max_cached:
                self._labels.clear()
            labels = self._labels[key] = tuple(sorted(_label(key, s, e) for s, e in
                                                      _fields(key, 0, len(key))))
        return labels


def _fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the payload of each length-delimited field in data[pos:end]."""
    while pos < end:
        _, pos = _read_varint(data, pos)
        size, pos = _read_varint(data, pos)
        yield pos, pos + size
        pos += size


def _label(data: bytes, pos: int, end: int) -> tuple[str, str]:
    name = value = b""
    while pos < end:
        tag, pos = _read_varint(data, pos)
        if tag == 0x0A or tag == 0x12:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise IndexError("truncated label")
            if tag == 0x0A:
                name = data[pos:pos + size]
            else:
                value = data[pos:pos + size]
            pos += size
        else:
            pos = _skip(data, pos, tag)
    if pos != end:
        raise IndexError("field past the end of its label")
    return name.decode(), value.decode()


def _sample(data: bytes, pos: int, end: int) -> tuple[float, int]:
    value, timestamp = 0.0, 0  # proto3 leaves zero fields out
    while pos < end:
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:  # a tag in more bytes than it needs, as in the series above
            tag, pos = _read_varint(data, pos)
        if tag == 0x09:
            if pos + 8 > end:
                raise IndexError("truncated value")
            value = _unpack_double(data, pos)[0]
            pos += 8
        elif tag == 0x10:
            timestamp, pos = _read_varint(data, pos)
            timestamp &= (1 << 64) - 1  # as protobuf reads a 10-byte varint's last byte
            if timestamp >= 1 << 63:
                timestamp -= 1 << 64
        else:
            pos = _skip(data, pos, tag)
    if pos != end:
        raise IndexError("field past the end of its sample")
    return value, timestamp


def _skip(data: bytes, pos: int, tag: int) -> int:
    """The position after the payload of a field with ``tag`` (an unknown field)."""
    wire_type = tag & 7
    if not 0 < tag >> 3 <= 0x1FFFFFFF:  # field numbers protobuf refuses as corrupt
        raise IndexError(f"field number {tag >> 3}")
    if wire_type == 0:
        return _read_varint(data, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        size, pos = _read_varint(data, pos)
        return pos + size
    if wire_type == 5:
        return pos + 4
    raise IndexError(f"wire type {wire_type}")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        # Ten bytes at most, as protobuf reads them: a damaged record's long run of
        # continuation bytes would otherwise build an ever larger int (quadratic time).
        if shift >= 70:
            raise IndexError("varint longer than 10 bytes")


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
