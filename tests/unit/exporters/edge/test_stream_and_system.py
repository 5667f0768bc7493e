from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter

from modelmon.exporters.edge.prompb import decode_write_request
from modelmon.exporters.edge.remote_write import decompress
from modelmon.exporters.edge.stream import DeviceView, SampleStream
from modelmon.plugins.system import SystemCollector, from_config


def test_device_view_labels_every_sample_once() -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", ["kind"], registry=registry).labels("a").inc()
    registry.register(SystemCollector("dev-9"))  # already labelled by device
    view = CollectorRegistry()
    view.register(DeviceView([registry], {"device": "dev-9", "site": "s"}))  # type: ignore[arg-type]
    assert view.get_sample_value("jobs_total", {"kind": "a", "device": "dev-9", "site": "s"}) == 1
    assert view.get_sample_value("modelmon_system_logical_cpus", {"device": "dev-9", "site": "s"}) >= 1


def test_a_collection_becomes_bounded_records_stamped_at_collection() -> None:
    registry = CollectorRegistry()
    c = Counter("jobs", "Jobs.", ["kind"], registry=registry)
    for i in range(25):
        c.labels(str(i)).inc(i)
    stream = SampleStream(DeviceView([registry], {"device": "d"}), max_samples_per_record=10)
    records = stream.collect(1234.5)
    assert [n for _, n in records] == [10, 10, 5]  # 25 _total samples, no _created
    series = [s for payload, _ in records for s in decode_write_request(decompress(payload))]
    assert {t for _, samples in series for _, t in samples} == {1234500}
    labels = dict(series[3][0])
    assert labels["__name__"] == "jobs_total" and labels["device"] == "d"
    assert list(series[3][0]) == sorted(series[3][0])  # remote_write wants sorted labels


def test_system_collector_reports_the_device() -> None:
    registry = CollectorRegistry()
    collector = from_config({"device": "press-7", "mountpoints": ["/", "/does-not-exist"]})
    registry.register(collector)
    list(collector.collect())  # a second collection has a CPU delta to report
    get = registry.get_sample_value
    total = get("modelmon_system_memory_bytes", {"device": "press-7", "state": "total"})
    available = get("modelmon_system_memory_bytes", {"device": "press-7", "state": "available"})
    assert total > 0 and 0 < available <= total
    assert get("modelmon_system_filesystem_bytes",
               {"device": "press-7", "mountpoint": "/", "state": "total"}) > 0
    assert get("modelmon_system_filesystem_bytes",
               {"device": "press-7", "mountpoint": "/does-not-exist", "state": "total"}) is None
    assert get("modelmon_system_load_average", {"device": "press-7", "period": "1m"}) >= 0
    ratio = get("modelmon_system_cpu_utilization_ratio", {"device": "press-7"})
    assert ratio is None or (0 <= ratio <= 1 and not math.isnan(ratio))
