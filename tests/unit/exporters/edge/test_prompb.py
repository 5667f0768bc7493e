from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from modelmon.exporters.edge.prompb import (
    SeriesEncoder,
    WriteRequest,
    decode_write_request,
    encode_write_request,
)

_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
_values = st.text(max_size=40)
_labels = st.dictionaries(_names, _values, min_size=1, max_size=6).map(
    lambda d: tuple(sorted(d.items()))
)
_floats = st.floats(allow_nan=False)
_timestamps = st.integers(min_value=-(2**62), max_value=2**62)


@given(st.lists(st.tuples(_labels, _floats, _timestamps), max_size=20))
def test_fast_encoder_writes_what_protobuf_parses(series: list) -> None:
    encoder = SeriesEncoder()
    fast = b"".join(encoder.encode(labels, value, ts) for labels, value, ts in series)
    expected = [(labels, [(value, ts)]) for labels, value, ts in series]
    assert decode_write_request(fast) == expected
    # Bytes may differ (proto3 leaves zero fields out); the parsed message may not.
    assert decode_write_request(encode_write_request(expected)) == expected


def test_concatenated_requests_merge_into_one() -> None:
    a = encode_write_request([((("__name__", "a"),), [(1.0, 1000)])])
    b = encode_write_request([((("__name__", "a"),), [(2.0, 2000)]), ((("__name__", "b"),), [(3.0, 2000)])])
    merged = WriteRequest.FromString(a + b)
    assert [ts.samples[0].timestamp for ts in merged.timeseries] == [1000, 2000, 2000]


def test_label_cache_is_bounded() -> None:
    encoder = SeriesEncoder(max_cached=10)
    for i in range(100):
        encoder.encode((("__name__", f"m{i}"),), 1.0, i)
    assert len(encoder._labels) <= 10


@given(_labels, _floats, _timestamps)
def test_first_timestamp_reads_what_both_encoders_wrote(labels, value, ts) -> None:
    from modelmon.exporters.edge.prompb import first_timestamp

    assert first_timestamp(SeriesEncoder().encode(labels, value, ts)) == ts
    assert first_timestamp(encode_write_request([(labels, [(value, ts)])])) == ts


def _protobuf_samples(data: bytes) -> list:
    """What the protobuf library reads: the reference for WriteRequestReader."""
    return [(tuple(sorted(labels)), value, ts)
            for labels, samples in decode_write_request(data) for value, ts in samples]


def _bits(samples: list) -> list:
    """Samples with their values as bit patterns (NaNs compare, the stale marker differs)."""
    return [(labels, struct.pack("<d", value), ts) for labels, value, ts in samples]


_any_floats = st.floats(allow_nan=True) | st.just(0.0)


@given(st.lists(st.tuples(_labels, st.lists(st.tuples(_any_floats, _timestamps), max_size=3)),
                max_size=10), st.booleans())
def test_reader_reads_what_protobuf_reads(series: list, twice: bool) -> None:
    from modelmon.exporters.edge.prompb import WriteRequestReader

    # The protobuf encoder leaves zero values and timestamps out and writes
    # series with several samples; the fast encoder writes every field.
    data = encode_write_request(series) + b"".join(
        SeriesEncoder().encode(labels, value, ts) for labels, samples in series[:3]
        for value, ts in samples)
    reader = WriteRequestReader()
    for _ in range(2 if twice else 1):  # the second pass reads labels from the cache
        assert _bits(reader.samples(data)) == _bits(_protobuf_samples(data))


def test_reader_keeps_the_staleness_marker_and_skips_unknown_fields() -> None:
    from modelmon.exporters.edge.prompb import STALE_NAN_BITS, WriteRequestReader

    labels = (("__name__", "up"), ("job", "ä"))
    stale = SeriesEncoder().encode_stale(labels, -5)
    # WriteRequest.metadata (field 3) and a TimeSeries exemplar (field 3): skipped.
    metadata = b"\x1a\x04\x08\x01\x10\x02"
    exemplar = b"\x1a\x00"
    message = encode_write_request([(labels[::-1], [(2.5, 7)])])
    assert message[0] == 0x0A
    size = message[1]
    with_exemplar = b"\x0a" + bytes((size + 2,)) + message[2:] + exemplar
    got = WriteRequestReader().samples(stale + metadata + with_exemplar)
    assert _bits(got) == _bits(_protobuf_samples(stale + metadata + with_exemplar))
    assert struct.unpack("<Q", struct.pack("<d", got[0][1]))[0] == STALE_NAN_BITS
    assert got[0][2] == -5 and got[1] == (labels, 2.5, 7)


@given(st.binary(max_size=12), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                        max_size=2))
def test_reader_refuses_what_is_not_a_write_request(junk: bytes, flips: list) -> None:
    from modelmon.exporters.edge.prompb import WriteRequestReader

    data = bytearray(encode_write_request([((("__name__", "up"), ("a", "b")), [(0.0, 0), (2.0, -3)])])
                     + SeriesEncoder().encode((("__name__", "up"),), 1.0, 1) + junk)
    for index, byte in flips:  # damage: lengths, tags and varints that run past their field
        data[index % len(data)] = byte
    try:
        got = WriteRequestReader().samples(bytes(data))
    except ValueError:
        return  # it refuses some bytes protobuf takes (deprecated groups), never the reverse
    assert _bits(got) == _bits(_protobuf_samples(bytes(data)))


def test_reader_label_cache_is_bounded() -> None:
    from modelmon.exporters.edge.prompb import WriteRequestReader

    reader = WriteRequestReader(max_cached=10)
    encoder = SeriesEncoder()
    for i in range(100):
        assert reader.samples(encoder.encode((("__name__", f"m{i}"),), 1.0, i)) == \
            [((("__name__", f"m{i}"),), 1.0, i)]
    assert len(reader._labels) <= 10


def test_varint_longer_than_ten_bytes_is_refused_as_protobuf_refuses_it() -> None:
    """A damaged record's run of continuation bytes: refused at the 11th byte (as
    protobuf refuses it), not read on to the end of the record into one huge int."""
    import pytest
    from google.protobuf.message import DecodeError

    from modelmon.exporters.edge.prompb import WriteRequestReader, first_timestamp

    for data in (b"\x0a" + b"\x80" * 10 + b"\x00",  # the series' length: 11 bytes, value 0
                 b"\x0a" + b"\xff" * 100_000):
        with pytest.raises(DecodeError):
            WriteRequest.FromString(data)
        with pytest.raises(ValueError, match="longer than 10 bytes"):
            WriteRequestReader().samples(data)
    sample = b"\x10" + b"\x81" + b"\x80" * 9 + b"\x00"  # an 11-byte timestamp varint
    record = b"\x0a" + bytes([len(sample) + 2]) + b"\x12" + bytes([len(sample)]) + sample
    assert first_timestamp(record) is None


def test_reader_reads_tags_written_in_more_bytes_than_they_need() -> None:
    """0x8A 0x00 is field 1, wire type 2, as protobuf reads it (a label, a sample, a value
    and a timestamp here); the reader once skipped such fields as unknown."""
    from modelmon.exporters.edge.prompb import WriteRequestReader

    def field(tag: bytes, payload: bytes) -> bytes:
        return tag + bytes([len(payload)]) + payload

    name = field(b"\x0a", b"__name__") + field(b"\x12", b"up")
    label = field(b"\x0a", b"a") + field(b"\x12", b"b")
    sample = b"\x89\x00" + struct.pack("<d", 2.5) + b"\x90\x00" + b"\x07"
    data = field(b"\x0a", field(b"\x0a", name) + field(b"\x8a\x00", label)
                 + field(b"\x92\x00", sample))
    expected = [((("__name__", "up"), ("a", "b")), 2.5, 7)]
    assert _protobuf_samples(data) == expected
    assert WriteRequestReader().samples(data) == expected
