"""The S3 archive sink against moto's S3 server on loopback, with faults
injected between the store applying an upload and the client hearing of it
(a 500, a dropped connection, a SIGKILL while the answer is held): every event
is archived exactly once. With S3_TEST_BUCKET set (and S3_ENDPOINT_URL for a
non-AWS store, credentials from the AWS environment) the fault-free test runs
against that bucket instead."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import check_sink
from support.s3_server import CREDENTIALS, fault_proxy, moto_s3

KEY = re.compile(r"^archive/dt=(\d{4}-\d{2}-\d{2})/([0-9a-f]+)-(\d{12})-(\d{12})\.ndjson\.gz$")


@pytest.fixture
def moto() -> Iterator[str]:
    with moto_s3() as url:
        yield url


def _bucket(endpoint: str | None, **credentials: Any) -> tuple[Any, str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=credentials.get("region"),
                          aws_access_key_id=credentials.get("access_key_id"),
                          aws_secret_access_key=credentials.get("secret_access_key"))
    bucket = os.environ.get("S3_TEST_BUCKET") if endpoint is None else None
    if bucket is None:
        bucket = f"modelmon-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
    return client, bucket


def _archived(client: Any, bucket: str, prefix: str = "archive/") -> dict[str, Any]:
    """key -> (its documents, its head)."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", ()):
            got = client.get_object(Bucket=bucket, Key=entry["Key"])
            docs = [json.loads(line) for line in gzip.decompress(got["Body"].read()).splitlines()]
            out[entry["Key"]] = (docs, got)
    return out


def _check_exactly_once(objects: dict[str, Any], spool_ids: set[str], expected: int) -> None:
    seen: list[str] = []
    for key, (docs, _) in objects.items():
        match = KEY.match(key)
        assert match, key
        date, spool_id, first, last = match[1], match[2], int(match[3]), int(match[4])
        assert spool_id in spool_ids
        ids = [d["event"]["id"] for d in docs]
        assert ids == [f"{spool_id}-{seq}" for seq in range(first, last + 1)], key
        assert all(d["@timestamp"].startswith(date) for d in docs)
        seen += ids
    assert len(seen) == len(set(seen)), "an event was archived twice"
    assert len(seen) == expected, "an event is missing"


def _shipper(tmp_path: Path, endpoint: str | None, bucket: str, **options: Any) -> LogShipper:
    creds = CREDENTIALS if endpoint is not None else {}
    return LogShipper(sink="s3", spool_dir=tmp_path / "spool", registry=CollectorRegistry(),
                      service_name="fraud-api", bucket=bucket, key_prefix="archive",
                      endpoint_url=endpoint, backoff_initial=0.01, backoff_max=0.05,
                      timeout=5, **creds, **options)


def test_rollover_partitions_and_encryption_settings(tmp_path) -> None:
    endpoint = os.environ.get("S3_ENDPOINT_URL")
    real = "S3_TEST_BUCKET" in os.environ
    with (moto_s3() if not real else _nothing()) as moto_url:
        endpoint = endpoint if real else moto_url
        client, bucket = _bucket(endpoint, **({} if real else CREDENTIALS))
        shipper = _shipper(tmp_path, endpoint if not real else os.environ.get("S3_ENDPOINT_URL"),
                           bucket, sse="AES256", max_object_records=25, batch_size=100)
        try:
            for i in range(120):  # two dates: the partition changes at midnight UTC
                day = "2026-11-30T23:59:59.000Z" if i < 50 else "2026-12-01T00:00:01.000Z"
                shipper.emit({"@timestamp": day, "message": f"prediction {i}",
                              "model": {"name": "fraud", "score": i / 100}})
            assert shipper.flush(30)
            spool_id = shipper.spool.id
        finally:
            shipper.close(2)
        objects = _archived(client, bucket)
    _check_exactly_once(objects, {spool_id}, 120)
    dates = sorted({KEY.match(k)[1] for k in objects})  # type: ignore[index]
    assert dates == ["2026-11-30", "2026-12-01"]
    assert all(len(docs) <= 25 for docs, _ in objects.values())
    assert all(head["ServerSideEncryption"] == "AES256" for _, head in objects.values())
    assert all(head["ContentEncoding"] == "gzip" for _, head in objects.values())


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        pass


def test_uploads_whose_answer_is_lost_are_archived_once(tmp_path, moto) -> None:
    client, bucket = _bucket(moto, **CREDENTIALS)
    with fault_proxy(moto) as proxy:
        # Stored, then: refused with a 500, connection dropped, 500 again...
        proxy.faults.extend(["500", "ok", "drop", "500", "ok", "ok", "drop", "drop", "500"])
        shipper = _shipper(tmp_path, proxy.url, bucket, batch_size=40, max_object_records=15)
        try:
            for i in range(400):
                shipper.emit({"message": f"prediction {i}", "model": {"name": "fraud"}})
                if i % 50 == 0:
                    shipper.flush(0.05)  # uploads and faults interleave with the producer
            assert shipper.flush(30)
            spool_id = shipper.spool.id
            sink: Any = shipper._sink
        finally:
            shipper.close(2)
        assert proxy.faults == []  # every fault was met
        assert shipper.retried > 0 and sink.listings > 0
    objects = _archived(client, bucket)
    _check_exactly_once(objects, {spool_id}, 400)
    # Re-uploads of a lost answer were avoided: the objects are exactly the uploads.
    assert len(objects) == proxy.applied_puts


_CHILD = textwrap.dedent("""
    import sys
    from prometheus_client import CollectorRegistry
    from modelmon.exporters.logs import LogShipper
    url, bucket, spool = sys.argv[1:4]
    shipper = LogShipper(sink="s3", spool_dir=spool, registry=CollectorRegistry(), bucket=bucket,
                         key_prefix="archive", endpoint_url=url, access_key_id="AKIAMODELMONTEST",
                         secret_access_key="moto-secret", region="us-east-1", batch_size=30,
                         max_object_records=30, fsync="always")
    for i in range(300):
        shipper.emit({"message": f"prediction {i}"})
    print("emitted", flush=True)
    shipper.flush(60)
""")


def test_a_crash_after_the_upload_before_the_acknowledgement_loses_and_duplicates_nothing(
        tmp_path, moto) -> None:
    client, bucket = _bucket(moto, **CREDENTIALS)
    spool = tmp_path / "spool"
    with fault_proxy(moto) as proxy:
        proxy.faults.extend(["ok", "ok", "hold"])  # the third object: stored, answer held
        child = subprocess.Popen([sys.executable, "-c", _CHILD, proxy.url, bucket, str(spool)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert proxy.held.wait(60), "the third upload never came"
            assert child.stdout is not None
            assert child.stdout.readline() == "emitted\n"  # all spooled; the upload still held
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
            if child.stdout is not None:
                child.stdout.close()
        proxy.release.set()
        stored_before_restart = proxy.applied_puts
        assert stored_before_restart == 3
        shipper = LogShipper(sink="s3", spool_dir=spool, registry=CollectorRegistry(),
                             bucket=bucket, key_prefix="archive", endpoint_url=proxy.url,
                             batch_size=30, max_object_records=30, **CREDENTIALS)
        try:
            assert shipper.flush(30)
            spool_id = shipper.spool.id
        finally:
            shipper.close(2)
    objects = _archived(client, bucket)
    _check_exactly_once(objects, {spool_id}, 300)


@pytest.mark.parametrize("options,message", [
    ({"bucket": "Not_A_Bucket"}, "logs.s3.bucket: expected an S3 bucket name"),
    ({"bucket": "b-1", "sse": "aes"}, "logs.s3.sse: expected one of AES256"),
    ({"bucket": "b-1", "sse_kms_key_id": "k"}, "logs.s3.sse_kms_key_id: needs sse: aws:kms"),
    ({"bucket": "b-1", "access_key_id": "A"}, "logs.s3.secret_access_key: set access_key_id"),
])
def test_bad_options_name_the_field(tmp_path, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_sink({"sink": "s3", "spool_dir": str(tmp_path), "s3": options})


def test_a_trickle_is_rolled_over_by_time_not_written_an_object_an_event(tmp_path, moto) -> None:
    client, bucket = _bucket(moto, **CREDENTIALS)
    shipper = _shipper(tmp_path, moto, bucket, linger=0.5, batch_size=1000)
    try:
        for i in range(24):  # 1.2 s of one event every 50 ms
            shipper.emit({"message": f"prediction {i}"})
            time.sleep(0.05)
        assert shipper.flush(10)
        spool_id = shipper.spool.id
    finally:
        shipper.close(2)
    objects = _archived(client, bucket)
    _check_exactly_once(objects, {spool_id}, 24)
    assert 2 <= len(objects) <= 5  # about one per linger, not 24
    default = _shipper(tmp_path / "other", moto, bucket)
    try:
        assert default.delivery_settings.linger == 60.0  # the sink's own default
    finally:
        default.close(1)
