"""Object-storage archive sink (the S3 API: AWS S3, MinIO, Ceph, GCS interoperability).

Each delivery writes gzip-compressed NDJSON objects (one ECS document a line,
``event.id`` set) under keys partitioned by the events' date and named by
the spool's sequence range they hold::

    <key_prefix>dt=2026-12-01/<spool id>-<first seq>-<last seq>.ndjson.gz

Rollover: a delivery's batch is written when it is full (``logs.batch_size``,
``logs.batch_bytes``) or its oldest event has waited ``logs.linger`` (60 s by
default with this sink: the time rollover); within it an object never spans
two dates (by ``@timestamp``), more than ``max_object_records`` events or
``max_object_bytes`` uncompressed bytes. Server-side
encryption (``sse: AES256`` or ``aws:kms`` with ``sse_kms_key_id``) and the
storage class are passed through to each upload.

Exactly once: an upload whose answer was lost (a timeout, a dropped
connection, a crash before the spool recorded it) leaves the records pending,
so the worker sends them again. Before the first upload of each spool after
a start, and after any failed upload, the sink lists that spool's objects in
the dates of the batch and counts the records an object already holds as
delivered, uploading only the others. An object is written whole or not at
all (a PUT is atomic), and every record sits in one date partition, so the
listing finds each one already archived. Uploads are not retried by botocore
(``total_max_attempts: 1``): the delivery worker owns retries and backoff.
Every answer that is not a success is retried, never dead-lettered: an
archive must not drop events because of a bucket policy or a bad key, which
are logged once per error code instead.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson

from modelmon.exporters.logs.sinks import Item, OnceLog, SendResult, documents

log = logging.getLogger(__name__)

_KEY = re.compile(r"-(\d{12})-(\d{12})\.ndjson\.gz$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_SSE = ("AES256", "aws:kms", "aws:kms:dsse")


class _Object:
    __slots__ = ("date", "lines", "seqs", "size")

    def __init__(self, date: str) -> None:
        self.date = date
        self.lines: list[bytes] = []
        self.seqs: list[int] = []
        self.size = 0


class S3ArchiveSink:
    """Archives events to an S3-compatible bucket (see the module docstring)."""

    name = "s3"
    # The delivery worker's default linger with this sink (``logs.linger``
    # overrides it): a batch short of batch_size waits up to a minute for
    # more events, so a quiet service writes an object a minute, not one an event.
    linger = 60.0

    def __init__(self, *, bucket: str, key_prefix: str = "modelmon/logs/",
                 endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, profile: str | None = None,
                 sse: str | None = None, sse_kms_key_id: str | None = None,
                 storage_class: str | None = None, max_object_bytes: int = 64 * 1024 * 1024,
                 max_object_records: int = 100_000, compress_level: int = 6,
                 addressing_style: str = "auto", timeout: float = 30.0,
                 verify_certs: bool = True, ca_file: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError("sink: the s3 sink needs boto3; pip install 'modelmon[aws]'") from None
        if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]",
                                                           bucket):
            raise ValueError(f"bucket: expected an S3 bucket name (3-63 lowercase letters, digits, "
                             f"'.' or '-'), got {bucket!r}")
        if key_prefix and not key_prefix.endswith("/"):
            key_prefix += "/"
        if sse is not None and sse not in _SSE:
            raise ValueError(f"sse: expected one of {', '.join(_SSE)}, got {sse!r}")
        if sse_kms_key_id is not None and sse not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError("sse_kms_key_id: needs sse: aws:kms")
        for field, value, low in (("max_object_bytes", max_object_bytes, 1024),
                                  ("max_object_records", max_object_records, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{field}: expected an integer >= {low}, got {value!r}")
        if addressing_style not in ("auto", "path", "virtual"):
            raise ValueError(f"addressing_style: expected auto, path or virtual, got "
                             f"{addressing_style!r}")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("secret_access_key: set access_key_id and secret_access_key together "
                             "(or neither, for a profile or the default AWS chain)")
        self.bucket, self.prefix = bucket, key_prefix
        self.max_object_bytes, self.max_object_records = max_object_bytes, max_object_records
        self._level = compress_level
        self._extra: dict[str, str] = {}
        if sse is not None:
            self._extra["ServerSideEncryption"] = sse
        if sse_kms_key_id is not None:
            self._extra["SSEKMSKeyId"] = sse_kms_key_id
        if storage_class is not None:
            self._extra["StorageClass"] = storage_class
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token, verify=ca_file if ca_file else verify_certs,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=timeout, read_timeout=timeout,
                          s3={"addressing_style": addressing_style}))
        # Spools whose objects in the bucket are known (listed since the last failure).
        self._known: set[str] = set()
        self._log_once = OnceLog(log)
        self.uploads = 0  # objects written (for tests and the cost figures)
        self.listings = 0  # LIST requests made to find objects already archived

    def key(self, spool_id: str, date: str, first: int, last: int) -> str:
        return f"{self.prefix}dt={date}/{spool_id}-{first:012d}-{last:012d}.ndjson.gz"

    def send(self, items: Sequence[Item]) -> SendResult:
        result = SendResult()
        if not items:
            return result
        spool_id = items[0].id[: -len(str(items[0].seq)) - 1]
        objects = self._objects(items, result)
        try:
            if spool_id not in self._known:
                archived = self._archived(spool_id, {o.date for o in objects})
                objects = self._without(objects, archived, result)
            for index, obj in enumerate(objects):
                answer = self._upload(spool_id, obj)
                if answer is not None:
                    self._known.discard(spool_id)
                    result.retry += [seq for o in objects[index:] for seq in o.seqs]
                    result.result = answer
                    return result
                result.delivered += obj.seqs
        except Exception as exc:  # botocore and connection errors: retried by the worker
            self._known.discard(spool_id)
            self._log_once.error(type(exc).__name__, f"s3 archive to bucket {self.bucket}: {exc}; "
                           "the events stay in the spool and are sent again")
            done = set(result.delivered) | {s for seqs in result.dead.values() for s in seqs}
            result.retry += [item.seq for item in items if item.seq not in done]
            result.result = "error"
            return result
        self._known.add(spool_id)
        return result

    def _objects(self, items: Sequence[Item], result: SendResult) -> list[_Object]:
        """The batch cut into objects: one date each, within the size limits."""
        objects: list[_Object] = []
        current: _Object | None = None
        for item, doc in documents(items, result):
            line = orjson.dumps(doc) + b"\n"
            stamp = doc.get("@timestamp")
            date = stamp[:10] if isinstance(stamp, str) and _DATE.match(stamp) else "undated"
            if (current is None or current.date != date
                    or len(current.seqs) >= self.max_object_records
                    or (current.seqs and current.size + len(line) > self.max_object_bytes)):
                current = _Object(date)
                objects.append(current)
            current.lines.append(line)
            current.seqs.append(item.seq)
            current.size += len(line)
        return objects

    def _archived(self, spool_id: str, dates: set[str]) -> list[tuple[int, int]]:
        """(first, last) seq ranges of this spool's objects in ``dates``."""
        ranges = []
        for date in sorted(dates):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket,
                                           Prefix=f"{self.prefix}dt={date}/{spool_id}-"):
                self.listings += 1
                for entry in page.get("Contents", ()):
                    match = _KEY.search(entry["Key"])
                    if match:
                        ranges.append((int(match[1]), int(match[2])))
        return ranges

    @staticmethod
    def _without(objects: list[_Object], archived: list[tuple[int, int]],
                 result: SendResult) -> list[_Object]:
        """``objects`` minus the records an archived object already holds (delivered)."""
        if not archived:
            return objects
        left = []
        for obj in objects:
            keep = _Object(obj.date)
            for seq, line in zip(obj.seqs, obj.lines, strict=True):
                if any(first <= seq <= last for first, last in archived):
                    result.delivered.append(seq)
                else:
                    keep.seqs.append(seq)
                    keep.lines.append(line)
                    keep.size += len(line)
            if keep.seqs:
                left.append(keep)
        return left

    def _upload(self, spool_id: str, obj: _Object) -> str | None:
        """None when the object is written; else a short result label (retried)."""
        from botocore.exceptions import ClientError

        body = gzip.compress(b"".join(obj.lines), compresslevel=self._level, mtime=0)
        key = self.key(spool_id, obj.date, obj.seqs[0], obj.seqs[-1])
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                ContentEncoding="gzip", Metadata={"events": str(len(obj.seqs))}, **self._extra)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            self._log_once.error(code, f"s3 archive: bucket {self.bucket} refused {key} ({status} "
                           f"{code}: {error.get('Message', '')}); the events stay in the spool "
                           "and are sent again" + _hint(code))
            return "throttled" if code in ("SlowDown", "Throttling", "TooManyRequests") else "error"
        self.uploads += 1
        return None

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def _hint(code: str) -> str:
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return ("; check logs.s3.access_key_id/secret_access_key (or the profile) and the "
                "bucket policy (s3:PutObject and s3:ListBucket)")
    if code == "NoSuchBucket":
        return "; create the bucket or fix logs.s3.bucket"
    if code in ("InvalidArgument", "KMS.NotFoundException", "KMSNotFoundException"):
        return "; check logs.s3.sse and sse_kms_key_id"
    return ""
