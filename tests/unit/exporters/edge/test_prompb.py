from __future__ import annotations

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
