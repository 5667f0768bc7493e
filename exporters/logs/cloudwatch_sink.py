"""Amazon CloudWatch Logs sink (``logs.sink: cloudwatch``): ``PutLogEvents``.

Each event becomes one log event: the ECS document with ``event.id`` set to
its deterministic id as the message, its ``@timestamp`` as the timestamp. A
delivery's batch is cut into requests within the service's limits
(``cloudwatch_batches.plan_requests``): at most 10,000 events and 1,048,576 bytes (each event
counts its UTF-8 size plus 26 bytes), spanning less than 24 hours, in
chronological order. Events CloudWatch refuses for good are dead-lettered,
never retried: older than 14 days or than the log group's retention, more than
2 hours in the future, larger than ``max_event_bytes``.

The log group and stream are created when missing (an existing one is fine);
the stream name is ``log_stream`` with ``{hostname}`` and ``{spool_id}``
filled in, by default one stream per spool slot.

Nothing lost or duplicated. ``ThrottlingException``, 5xx and connection
errors leave the events pending: the delivery worker retries them with its
backoff (botocore's own retries are off). A put whose answer never came (a
5xx, a dropped connection or a timeout after the request went out, a crash
before the spool recorded it) may have been stored, and ``PutLogEvents`` has
no idempotency key: so after such a put, and before the first put of each
spool after a start, the sink reads the stream back over the batch's time
range (``GetLogEvents``) and counts the events it finds by ``event.id`` as
delivered, sending only the others. It waits ``readback_delay`` after an
unanswered put first: CloudWatch makes new events readable within seconds.
Services that still enforce sequence tokens (CloudWatch before 2023, some
emulators) are handled too: ``InvalidSequenceTokenException`` -> the expected
token is taken and the put sent again; ``DataAlreadyAcceptedException`` for the
very put that went unanswered (same events, same token) -> delivered.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from modelmon.exporters.logs.cloudwatch_batches import (
    DEFAULT_MAX_EVENT_BYTES,
    EVENT_OVERHEAD,
    MAX_AGE_MS,
    MAX_AHEAD_MS,
    MAX_BATCH_BYTES,
    LogEvent,
    plan_requests,
    timestamp_ms,
)
from modelmon.exporters.logs.sinks import Item, OnceLog, SendResult, documents
from modelmon.units import parse_duration

log = logging.getLogger(__name__)

_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                   2192, 2557, 2922, 3288, 3653)
_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
_TOKEN_RETRIES = 3


@dataclass
class _Unanswered:
    """A put that may have been stored: its events and the token it carried."""

    seqs: tuple[int, ...]
    token: str | None
    when: float


class CloudWatchLogsSink:
    """Ships events to a CloudWatch Logs stream (see the module docstring)."""

    name = "cloudwatch"

    def __init__(self, *, log_group: str, log_stream: str = "{hostname}-{spool_id}",
                 create_log_group: bool = True, retention_days: int | None = None,
                 kms_key_id: str | None = None, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 profile: str | None = None, timeout: float = 30.0, verify_certs: bool = True,
                 ca_file: str | None = None, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 readback_delay: float | str = 5.0) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError("sink: the cloudwatch sink needs boto3; pip install 'modelmon[aws]'"
                             ) from None
        if not isinstance(log_group, str) or not _NAME.fullmatch(log_group):
            raise ValueError(f"log_group: expected a log group name (1-512 of letters, digits and "
                             f"'._-/#'), got {log_group!r}")
        if not isinstance(log_stream, str) or not log_stream or ":" in log_stream \
                or "*" in log_stream:
            raise ValueError(f"log_stream: expected a stream name without ':' or '*' "
                             f"({{hostname}} and {{spool_id}} are filled in), got {log_stream!r}")
        try:
            log_stream.format(hostname="h", spool_id="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"log_stream: only {{hostname}} and {{spool_id}} can be filled in, "
                             f"got {log_stream!r}") from None
        if retention_days is not None and retention_days not in _RETENTION_DAYS:
            raise ValueError(f"retention_days: expected one of {', '.join(map(str, _RETENTION_DAYS))}"
                             f", got {retention_days!r}")
        if isinstance(max_event_bytes, bool) or not isinstance(max_event_bytes, int) \
                or not 1 <= max_event_bytes <= MAX_BATCH_BYTES - EVENT_OVERHEAD:
            raise ValueError(f"max_event_bytes: expected an integer from 1 to "
                             f"{MAX_BATCH_BYTES - EVENT_OVERHEAD}, got {max_event_bytes!r}")
        if isinstance(readback_delay, str):
            readback_delay = parse_duration(readback_delay, "readback_delay")
        if isinstance(readback_delay, bool) or not isinstance(readback_delay, int | float) \
                or readback_delay < 0:
            raise ValueError(f"readback_delay: expected a duration >= 0 such as 5 or '5s', got "
                             f"{readback_delay!r}")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("secret_access_key: set access_key_id and secret_access_key together "
                             "(or neither, for a profile or the default AWS chain)")
        self.log_group, self.stream_template = log_group, log_stream
        self.create_log_group, self.retention_days = create_log_group, retention_days
        self.kms_key_id = kms_key_id
        self.max_event_bytes, self.readback_delay = max_event_bytes, float(readback_delay)
        self._hostname = socket.gethostname().replace(":", "-").replace("*", "-")
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        self._client: Any = session.client(
            "logs", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token, verify=ca_file if ca_file else verify_certs,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=timeout, read_timeout=timeout))
        self._tokens: dict[str, str | None] = {}  # stream -> next sequence token, if any
        self._checked: set[str] = set()  # streams read back since this start
        self._unanswered: dict[str, _Unanswered] = {}
        self._log_once = OnceLog(log)
        self.puts = 0  # PutLogEvents requests answered with success (tests, cost figures)
        self.readbacks = 0  # GetLogEvents requests made to find events already stored

    def stream_name(self, spool_id: str) -> str:
        return self.stream_template.format(hostname=self._hostname, spool_id=spool_id)

    # -- one delivery ---------------------------------------------------------

    def send(self, items: Sequence[Item]) -> SendResult:
        result = SendResult()
        if not items:
            return result
        spool_id = items[0].id[: -len(str(items[0].seq)) - 1]
        stream = self.stream_name(spool_id)
        events = self._events(items, result)
        pending = {e.seq for e in events}
        try:
            unanswered = self._unanswered.get(stream)
            if unanswered is not None:
                wait = unanswered.when + self.readback_delay - time.monotonic()
                if wait > 0:  # let CloudWatch make that put readable first
                    result.retry += sorted(pending)
                    result.retry_after, result.result = wait, "verifying"
                    return result
            if stream not in self._checked or unanswered is not None:
                stored = self._stored_ids(stream, events, items[0].id[: -len(str(items[0].seq))])
                self._checked.add(stream)
                found = [e.seq for e in events if e.seq in stored]
                result.delivered += found
                events = [e for e in events if e.seq not in stored]
                if unanswered is not None and not found:
                    # Not readable (yet): the same put again, so that a service
                    # with sequence tokens answers DataAlreadyAcceptedException if
                    # it has it.
                    again = set(unanswered.seqs)
                    first = [e for e in events if e.seq in again]
                    if len(first) == len(again):
                        events = [e for e in events if e.seq not in again]
                        self._put_all(stream, [first], result, unanswered)
                        if result.retry:
                            result.retry += [e.seq for e in events]
                            return result
                self._unanswered.pop(stream, None)
            self._put_all(stream, plan_requests(events), result, None)
        except Exception as exc:  # botocore and connection errors: retried by the worker
            response = getattr(exc, "response", None)
            code = str(response.get("Error", {}).get("Code", "")) if isinstance(
                response, dict) else ""
            self._log_once.error(code or type(exc).__name__,
                           f"cloudwatch logs {self.log_group}/{stream}: {exc}; the events stay "
                           "in the spool and are sent again" + _hint(code))
            settled = set(result.delivered) | set(result.retry) | {
                s for seqs in result.dead.values() for s in seqs}
            result.retry += [seq for seq in pending if seq not in settled]
            result.result = "error"
        return result

    def _events(self, items: Sequence[Item], result: SendResult) -> list[LogEvent]:
        now = int(time.time() * 1000)
        events = []
        for item, doc in documents(items, result):
            stamp = timestamp_ms(doc.get("@timestamp"))
            if stamp is None:
                stamp = now
            message = orjson.dumps(doc).decode()
            if stamp < now - MAX_AGE_MS:
                result.add_dead("older than 14 days: CloudWatch Logs refuses it", item.seq)
            elif stamp > now + MAX_AHEAD_MS:
                result.add_dead("more than 2 hours in the future: CloudWatch Logs refuses it",
                                item.seq)
            elif len(message.encode()) > self.max_event_bytes:
                result.add_dead(f"larger than logs.cloudwatch.max_event_bytes "
                                f"({self.max_event_bytes}); lower logs.max_payload_chars",
                                item.seq)
            else:
                events.append(LogEvent(item.seq, stamp, message))
        return events

    def _put_all(self, stream: str, requests: list[list[LogEvent]], result: SendResult,
                 unanswered: _Unanswered | None) -> None:
        for index, request in enumerate(requests):
            label = self._put(stream, request, result, unanswered)
            if label is not None:
                result.retry += [e.seq for r in requests[index + 1:] for e in r]
                result.result = label
                return

    def _put(self, stream: str, request: list[LogEvent], result: SendResult,
             unanswered: _Unanswered | None) -> str | None:
        """One request: None when every event is settled in ``result``; else a
        result label, the request's events left to retry."""
        from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

        seqs = [e.seq for e in request]
        created = False
        for _ in range(_TOKEN_RETRIES + 2):  # stream creation, token corrections
            token = self._tokens.get(stream) if unanswered is None else unanswered.token
            kwargs: dict[str, Any] = {
                "logGroupName": self.log_group, "logStreamName": stream,
                "logEvents": [{"timestamp": e.timestamp, "message": e.message} for e in request]}
            if token is not None:
                kwargs["sequenceToken"] = token
            try:
                answer = self._client.put_log_events(**kwargs)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "error"))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                expected = exc.response.get("expectedSequenceToken")
                if code == "ResourceNotFoundException" and not created:
                    self._create(stream)  # the first put to a new stream (or group)
                    created = True
                    continue
                if code == "DataAlreadyAcceptedException" and unanswered is not None \
                        and tuple(seqs) == unanswered.seqs:
                    self._tokens[stream] = expected
                    result.delivered += seqs
                    return None
                if code in ("InvalidSequenceTokenException", "DataAlreadyAcceptedException"):
                    self._tokens[stream] = expected
                    unanswered = None
                    continue
                if code == "InvalidParameterException":
                    return self._bisect(stream, request, result, str(exc))
                if status >= 500:
                    self._unanswered[stream] = _Unanswered(tuple(seqs), token, time.monotonic())
                self._log_once.error(code, f"cloudwatch logs refused a put to {self.log_group}/{stream} "
                               f"({status} {code}: {exc.response.get('Error', {}).get('Message')});"
                               " the events stay in the spool and are sent again" + _hint(code))
                result.retry += seqs
                return "throttled" if code in ("ThrottlingException",) else (
                    "server_error" if status >= 500 else "error")
            except (EndpointConnectionError, ConnectTimeoutError):
                raise  # never sent
            except Exception:
                # Sent, answer lost (a timeout, a dropped connection): maybe stored.
                self._unanswered[stream] = _Unanswered(tuple(seqs), token, time.monotonic())
                raise
            self.puts += 1
            self._tokens[stream] = answer.get("nextSequenceToken")
            self._settle_rejected(request, answer.get("rejectedLogEventsInfo") or {}, result)
            return None
        result.retry += seqs
        return "error"

    def _bisect(self, stream: str, request: list[LogEvent], result: SendResult,
                reason: str) -> str | None:
        """An InvalidParameterException refuses a request for one of its events:
        halves down to the single event, which is dead-lettered."""
        if len(request) == 1:
            result.add_dead(f"refused by CloudWatch Logs: {reason}", request[0].seq)
            return None
        half = len(request) // 2
        first, second = request[:half], request[half:]
        label = self._put(stream, first, result, None)
        if label is not None:
            result.retry += [e.seq for e in second]
            return label
        return self._put(stream, second, result, None)

    @staticmethod
    def _settle_rejected(request: list[LogEvent], info: dict[str, Any],
                         result: SendResult) -> None:
        too_new = info.get("tooNewLogEventStartIndex")
        too_old = info.get("tooOldLogEventEndIndex")
        expired = info.get("expiredLogEventEndIndex")
        for index, event in enumerate(request):
            if too_new is not None and index >= too_new:
                result.add_dead("more than 2 hours in the future: CloudWatch Logs refused it",
                                event.seq)
            elif too_old is not None and index <= too_old:
                result.add_dead("older than 14 days: CloudWatch Logs refused it", event.seq)
            elif expired is not None and index <= expired:
                result.add_dead("older than the log group's retention: CloudWatch Logs refused it",
                                event.seq)
            else:
                result.delivered.append(event.seq)

    # -- the stream -----------------------------------------------------------

    def _create(self, stream: str) -> None:
        from botocore.exceptions import ClientError

        if self.create_log_group:
            try:
                kwargs: dict[str, Any] = {"logGroupName": self.log_group}
                if self.kms_key_id:
                    kwargs["kmsKeyId"] = self.kms_key_id
                self._client.create_log_group(**kwargs)
                if self.retention_days is not None:
                    self._client.put_retention_policy(logGroupName=self.log_group,
                                                      retentionInDays=self.retention_days)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
        try:
            self._client.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise

    def _stored_ids(self, stream: str, events: list[LogEvent], id_prefix: str) -> set[int]:
        """Seqs of this spool's events the stream already holds in the time range
        of ``events`` (their ``event.id`` is the spool id and the seq)."""
        from botocore.exceptions import ClientError

        if not events:
            return set()
        start = min(e.timestamp for e in events)
        end = max(e.timestamp for e in events) + 1  # endTime is exclusive
        stored: set[int] = set()
        token: str | None = None
        marker = b'"id":"' + id_prefix.encode()
        for _ in range(10_000):  # pages; bounded against a service that never ends them
            kwargs: dict[str, Any] = {"logGroupName": self.log_group, "logStreamName": stream,
                                      "startTime": start, "endTime": end, "startFromHead": True}
            if token is not None:
                kwargs["nextToken"] = token
            try:
                page = self._client.get_log_events(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    # No stream (or group) yet: nothing stored. Created now, not
                    # after a first put of the whole batch is refused.
                    self._create(stream)
                    return stored
                raise
            self.readbacks += 1
            for event in page.get("events", ()):
                message = event.get("message", "").encode()
                if marker not in message:
                    continue
                try:
                    doc = orjson.loads(message)
                    event_id = doc["event"]["id"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                if isinstance(event_id, str) and event_id.startswith(id_prefix):
                    tail = event_id[len(id_prefix):]
                    if tail.isdigit():
                        stored.add(int(tail))
            # A page may be empty while more follow: the end is the token repeated.
            next_token = page.get("nextForwardToken")
            if next_token is None or next_token == token:
                break
            token = next_token
        return stored

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def _hint(code: str) -> str:
    if code in ("AccessDeniedException", "UnrecognizedClientException",
                "InvalidSignatureException", "ExpiredTokenException"):
        return ("; check logs.cloudwatch.access_key_id/secret_access_key (or the profile) and the "
                "IAM policy (logs:PutLogEvents, logs:GetLogEvents, logs:CreateLogStream, "
                "logs:CreateLogGroup)")
    if code == "ResourceNotFoundException":
        return ("; create the log group or set logs.cloudwatch.create_log_group: true (and allow "
                "logs:CreateLogGroup)")
    if code == "ThrottlingException":
        return "; raise logs.batch_size so fewer, larger requests are made"
    return ""
