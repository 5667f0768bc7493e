"""The sender: spool -> remote_write, with backoff, a rate limit and an order.

One step sends one batch of spool records (at most ``max_samples_per_send``
samples) and settles it in the spool:

* accepted -> ``ack``;
* 5xx, 429, connection error -> left in the spool and retried after an
  exponential backoff (forever, unless ``max_retry_duration`` is set, then the
  batch is dropped with reason ``retry_exhausted``);
* samples refused as too old / out of order / duplicate, or a 400/413/422 ->
  the batch is split in halves and each half sent once more, down to single
  records, because a receiver refuses a whole request for one bad sample
  (Prometheus rolls the request back); a single refused record is dropped and
  counted by reason. Each record is thus tried at most ~log2(batch) times,
  never in a loop;
* any other 4xx (401, 403, 404, ...) -> dropped, counted as ``http_<status>``.

Records within a batch are sent in spool order, so each series' samples are in
timestamp order. ``order: live_first`` picks the newest records first, which
needs a receiver with an out-of-order window.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .config import RemoteWriteConfig
from .remote_write import RemoteWriteClient, decompress
from .telemetry import EdgeMetrics

log = logging.getLogger(__name__)

_PEEK_RECORDS = 256
_BISECT_STATUSES = {400, 413, 422}


class RateLimiter:
    """Token bucket in samples/s; a request larger than the bucket just waits longer."""

    def __init__(self, rate: float | None, burst: float) -> None:
        self.rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def delay_for(self, samples: int) -> float:
        """Seconds to wait before sending ``samples``; the tokens are taken now."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= samples
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass
class StepResult:
    state: Literal["idle", "progress", "retry"]
    delay: float = 0.0


class Sender:
    def __init__(
        self,
        spool: Any,
        client: RemoteWriteClient,
        config: RemoteWriteConfig,
        metrics: EdgeMetrics,
        stop: threading.Event | None = None,
    ) -> None:
        self._spool = spool
        self._client = client
        self._config = config
        self._metrics = metrics
        self._stop = stop or threading.Event()
        burst = max(float(config.max_samples_per_send), config.backfill_rate_limit or 0.0)
        self._limiter = RateLimiter(config.backfill_rate_limit, burst)
        self._backoff = 0.0
        self._failing_since: float | None = None
        self._retry_after: float | None = None

    def run(self) -> None:
        """Send until the stop event is set."""
        while not self._stop.is_set():
            try:
                step = self.step()
            except Exception:  # the agent must outlive any bug in one batch
                log.exception("edge sender step failed; retrying in 1s")
                step = StepResult("retry", 1.0)
            if step.state == "idle":
                self._spool.wait(0.5)
            elif step.delay > 0:
                self._stop.wait(step.delay)

    def step(self) -> StepResult:
        """Send one batch; say what to do next."""
        records = self._spool.peek(
            _PEEK_RECORDS, newest_first=self._config.order == "live_first"
        )
        if not records:
            return StepResult("idle")
        batch, samples = [], 0
        for record in records:
            if batch and samples + record.items > self._config.max_samples_per_send:
                break
            batch.append(record)
            samples += record.items
        batch.sort(key=lambda r: r.seq)
        self._retry_after = None
        if not self._deliver(batch):
            return self._retry_later(batch)
        self._backoff = 0.0
        self._failing_since = None
        return StepResult("progress")

    def _deliver(self, batch: Sequence[Any]) -> bool:
        """Send ``batch`` and settle it; False when it must be retried later."""
        samples = sum(r.items for r in batch)
        wait = self._limiter.delay_for(samples)
        if wait > 0 and self._stop.wait(wait):
            return False
        body = b"".join(decompress(r.payload) for r in batch)
        result = self._client.send(body)
        now = time.time()
        self._metrics.observe_send(result, samples, now)
        seqs = [r.seq for r in batch]
        if result.outcome == "success":
            self._spool.ack(seqs)
            return True
        if result.outcome == "retry":
            self._retry_after = result.retry_after
            log.warning("remote_write to %s failed (%s %s); will retry", self._client.url,
                        result.reason, result.message[:200])
            return False
        splittable = result.outcome == "rejected" or result.status in _BISECT_STATUSES
        if splittable and len(batch) > 1:
            half = len(batch) // 2
            # Stop at the first half that must be retried: the rest stays spooled.
            return self._deliver(batch[:half]) and self._deliver(batch[half:])
        log.warning("receiver refused %d samples (%s, HTTP %s): %s; dropped", samples,
                    result.reason, result.status, result.message[:200])
        self._spool.drop(seqs, result.reason)
        self._metrics.count_dropped(result.reason, samples)
        return True

    def _retry_later(self, batch: Sequence[Any]) -> StepResult:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        limit = self._config.max_retry_duration
        if limit is not None and now - self._failing_since >= limit:
            samples = sum(r.items for r in batch)
            log.error("giving up on %d samples after retrying for %.0fs", samples, limit)
            self._spool.drop([r.seq for r in batch], "retry_exhausted")
            self._metrics.count_dropped("retry_exhausted", samples)
            self._failing_since = None
            return StepResult("progress")
        cfg = self._config
        self._backoff = min(cfg.max_backoff, max(cfg.min_backoff, self._backoff * 2))
        if self._retry_after is not None:  # a 429/503 that says when to come back
            return StepResult("retry", min(cfg.max_backoff, self._retry_after))
        # Jitter spreads a fleet's retries after a receiver outage.
        return StepResult("retry", self._backoff * random.uniform(0.8, 1.0))
