"""The edge agent's delivery: spool -> remote_write, on the core delivery worker.

The worker (``modelmon.spool.delivery``) owns the loop: it reads a batch of
spool records (at most ``max_samples_per_send`` samples), paces to
``backfill_rate_limit``, sends, settles, and backs off with full jitter
between ``min_backoff`` and ``max_backoff`` (honouring ``Retry-After`` up to
``max_backoff``); with ``max_retry_duration`` set, a batch failing that long
is dropped (``retry_exhausted``). This module says how to send a batch and
what each answer of the receiver means:

* accepted -> delivered;
* 5xx, 429, connection error -> retry;
* samples refused as too old / out of order / duplicate, or a 400/413/422 ->
  split: the worker sends each half once more, down to single records,
  because a receiver refuses a whole request for one bad sample (Prometheus
  rolls the request back); a single refused record is dropped and counted by
  reason. Each record is thus tried at most ~log2(batch) times, never in a loop;
* any other 4xx (401, 403, 404, ...) -> dropped, counted as ``http_<status>``.

Records within a batch are sent in spool order, so each series' samples are in
timestamp order. ``order: live_first`` picks the newest records first, which
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
from .remote_write import RemoteWriteClient, decompress
from .telemetry import EdgeMetrics

log = logging.getLogger(__name__)

_PEEK_RECORDS = 256
_SPLIT_STATUSES = {400, 413, 422}


class RemoteWriteDestination:
    """The remote_write receiver as a delivery destination."""

    name = "remote_write"

    def __init__(self, client: RemoteWriteClient, metrics: EdgeMetrics) -> None:
        self._client = client
        self._metrics = metrics

    def send(self, batch: Batch) -> SendResult:
        samples = batch.item_count()
        answer = self._client.send(b"".join(decompress(payload) for _, payload in batch.rows))
        self._metrics.observe_send(answer, samples, time.time())
        seqs = batch.seqs()
        if answer.outcome == "success":
            return SendResult(delivered=seqs, result=answer.outcome)
        if answer.outcome == "retry":
            log.warning("remote_write to %s failed (%s %s); will retry", self._client.url,
                        answer.reason, answer.message[:200])
            return SendResult(retry=seqs, retry_after=answer.retry_after, result=answer.outcome)
        splittable = answer.outcome == "rejected" or answer.status in _SPLIT_STATUSES
        if splittable and len(batch) > 1:
            return SendResult(split=answer.reason, result=answer.outcome)
        log.warning("receiver refused %d samples (%s, HTTP %s): %s; dropped", samples,
                    answer.reason, answer.status, answer.message[:200])
        return SendResult(dropped={answer.reason: seqs}, result=answer.outcome)


class _DropCounter:
    """Counts every dropped sample by reason (the receiver's, and retry_exhausted)."""

    def __init__(self, metrics: EdgeMetrics) -> None:
        self._metrics = metrics

    def settled(self, batch: Batch, result: SendResult) -> None:
        for reason, seqs in result.dropped.items():
            self._metrics.count_dropped(reason, batch.item_count(seqs))


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
