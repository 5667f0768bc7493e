"""Rule files in a real Prometheus and on the edge evaluator over the same samples.

Prometheus evaluates on the wall clock, so a scenario's samples are
remote-written ahead of time with future timestamps; what its rules wrote is
then read back sample by sample (``raw_samples``), so the evaluator can run at
the very timestamps Prometheus evaluated at.
"""

from __future__ import annotations

from collections import defaultdict

import requests

from modelmon.exporters.edge.prompb import LabelSet, SeriesEncoder
from modelmon.exporters.edge.remote_write import compress

Series = dict[LabelSet, list[tuple[int, float]]]


def write(url: str, series: Series) -> None:
    """Remote-write every sample of ``series`` to the Prometheus at ``url``."""
    encoder = SeriesEncoder()
    body = b"".join(encoder.encode(labels, v, t) for labels in sorted(series)
                    for t, v in series[labels])
    r = requests.post(f"{url}/api/v1/write", data=compress(body), headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0"}, timeout=30)
    assert r.status_code in (200, 204), r.text


def raw_samples(url: str, selector: str, at_ms: int, window: str = "2m"
                ) -> dict[int, set[tuple[LabelSet, float]]]:
    """Timestamp (ms) -> the (labels, value) samples of ``selector`` in ``window``
    before ``at_ms`` (staleness markers are not returned by a range query)."""
    r = requests.get(f"{url}/api/v1/query", params={
        "query": f"{selector}[{window}]", "time": f"{at_ms // 1000}.{at_ms % 1000:03d}"},
        timeout=30)
    body = r.json()
    assert body["status"] == "success", body
    out: dict[int, set[tuple[LabelSet, float]]] = defaultdict(set)
    for s in body["data"]["result"]:
        labels = tuple(sorted(s["metric"].items()))
        for ts, value in s["values"]:
            out[round(float(ts) * 1000)].add((labels, float(value)))
    return out
