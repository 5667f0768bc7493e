"""The edge agent's delivery: spool -> remote_write, on the core delivery worker.

The worker (``modelmon.spool.delivery``) owns the loop: it reads a batch of
spool records (at most ``max_samples_per_send`` samples), paces to
``backfill_rate_limit``, sends, settles, and backs off with full jitter
between ``min_backoff`` and ``max_backoff`` (honouring ``Retry-After`` up to
``max_backoff``); with ``max_retry_duration`` set, a batch failing that long
is dropped (``retry_exhausted``); with ``reconnect_jitter`` set, a backlog
left by an outage waits a random part of it once the link is back
(``modelmon.spool.reconnect``). What is paced after a regional outage, and
how much it spares the receiver: docs/edge.md, "Reconnect after a regional
outage". This module says how to send a batch and
what each answer of the receiver means:

* accepted -> delivered;
* 5xx, 429, connection error -> retry, whatever the body says (remote-write
  1.0: a sender MUST retry 5xx with backoff); an age bound ends retries that
  cannot succeed (``max_retry_duration``, the spool's ``max_age``);
* 401, 403 -> retry, but the client sends nothing more (``held``) until the
  credentials change (``remote_write``); polled every ``min_backoff`` to
  ``max_backoff``;
* any other 4xx -> the batch is dropped once, counted by reason (``too_old``,
  ``out_of_order``, ``duplicate`` when the receiver says so, else
  ``http_<status>``): the spec says a sender MUST NOT retry it, and sending
  halves again would be a retry.

Records within a batch are sent in timestamp order (each record is one
collection), so each series' samples are in timestamp order in every request,
even after the wall clock stepped back. ``order: live_first`` picks the
newest records first, which
needs a receiver with an out-of-order window.
"""

from __future__ import annotations

import logging
import threading
import time

from modelmon.spool import Spool
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Batch, SendResult

from .config import RemoteWriteConfig
from .prompb import first_timestamp
from .remote_write import RemoteWriteClient, decompress
from .telemetry import EdgeMetrics

log = logging.getLogger(__name__)

_PEEK_RECORDS = 256


class RemoteWriteDestination:
    """The remote_write receiver as a delivery destination."""

    name = "remote_write"

    def __init__(self, client: RemoteWriteClient, metrics: EdgeMetrics) -> None:
        self._client = client
        self._metrics = metrics

    def send(self, batch: Batch) -> SendResult:
        samples = batch.item_count()
        answer = self._client.send(_in_time_order([decompress(payload) for _, payload in batch.rows]))
        seqs = batch.seqs()
        if answer.outcome == "held":  # no request was made: nothing to observe
            return SendResult(retry=seqs, result=answer.outcome)
        self._metrics.observe_send(answer, samples, time.time())
        if answer.outcome == "success":
            return SendResult(delivered=seqs, result=answer.outcome)
        if answer.outcome == "unauthorized":  # logged by the client, once
            return SendResult(retry=seqs, result=answer.outcome)
        if answer.outcome == "retry":
            log.warning("remote_write to %s failed (%s %s); will retry", self._client.url,
                        answer.reason, answer.message[:200])
            # A 429 is a receiver that is up and asks for less: "throttled", not an
            # outage, so the next success is no reconnect (core/spool/reconnect.py).
            label = "throttled" if answer.status == 429 else answer.outcome
            return SendResult(retry=seqs, retry_after=answer.retry_after, result=label)
        log.warning("receiver refused %d samples (%s, HTTP %s): %s; dropped", samples,
                    answer.reason, answer.status, answer.message[:200])
        return SendResult(dropped={answer.reason: seqs}, result=answer.outcome)


def _in_time_order(requests: list[bytes]) -> bytes:
    times = [first_timestamp(r) or 0 for r in requests]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        # The wall clock stepped back between collections: a request must
        # still carry each series' samples in timestamp order.
        requests = [r for _, r in sorted(zip(times, requests, strict=True), key=lambda p: p[0])]
    return b"".join(requests)


class _DropCounter:
    """Counts every dropped sample by reason (the receiver's, and retry_exhausted)."""

    def __init__(self, metrics: EdgeMetrics) -> None:
        self._metrics = metrics

    def settled(self, batch: Batch, result: SendResult) -> None:
        for reason, seqs in result.dropped.items():
            self._metrics.count_dropped(reason, batch.item_count(seqs))

    def unrecorded(self, batch: Batch, exc: BaseException) -> None:
        """The spool could not record an answer (a full disk); it is recorded
        again later and nothing is sent meanwhile."""
        self._metrics.count_unrecorded()


def delivery_settings(config: RemoteWriteConfig) -> DeliverySettings:
    return DeliverySettings(
        batch_records=_PEEK_RECORDS,
        batch_bytes=None,
        batch_items=config.max_samples_per_send,
        newest_first=config.order == "live_first",
        backoff_base=config.min_backoff,
        backoff_cap=config.max_backoff,
        retry_after_cap=config.max_backoff,
        max_retry_duration=config.max_retry_duration,
        rate_limit=config.backfill_rate_limit,
        rate_burst=max(float(config.max_samples_per_send), config.backfill_rate_limit or 0.0),
        reconnect_jitter=config.reconnect_jitter,
    )


def remote_write_worker(
    spool: Spool,
    client: RemoteWriteClient,
    config: RemoteWriteConfig,
    metrics: EdgeMetrics,
    stop: threading.Event | None = None,
) -> DeliveryWorker:
    """The agent's sender: ``run()`` delivers until ``stop`` is set, ``step()`` one batch."""
    return DeliveryWorker(spool, RemoteWriteDestination(client, metrics), delivery_settings(config),
                          observer=_DropCounter(metrics), stop=stop, name="modelmon-edge-sender")
