"""The reconnect hold: a jittered start of the backlog after an outage.

When a region's link comes back, every device of it has a backlog and
every one would push it at once: the receiver takes the whole fleet's
backlog in the same second. Full-jitter backoff spreads the *probes*; this
spreads what follows them. A **reconnect** is the first successful send
after failed ones, or the first one after the worker started (a device that
rebooted during the outage). If the spool then still holds a record older
than ``jitter`` seconds, the backlog is held for a delay drawn uniformly in
``[0, jitter]``:

* records appended after the reconnect (seq above ``edge_seq``, the newest
  record read by then) are the live edge: a worker reading newest first
  keeps sending them during the hold;
* the rest waits; a worker reading oldest first sends nothing at all
  during the hold, since sending newer samples first would make a receiver
  without an out-of-order window refuse the older ones.

An outage shorter than ``jitter`` leaves no record that old, so it is not
held: a short blip is never delayed longer than it lasted.

Until the reconnect, the worker **probes** with one record a batch
(``probing``): the newest when reading newest first (the live collection
goes first), else the oldest. The jitter spreads what follows a probe, so
the probes themselves must be small: a fleet starting at once sends one
record each, not ``max_samples_per_send`` each.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ReconnectHold:
    """Decides, at each reconnect, whether and how long the backlog waits.

    ``clock`` (monotonic) times the hold, ``wall`` dates the backlog against
    the spool's ``created`` times; ``rng`` draws the delay. All three are
    injectable so that a test runs on a fixed clock and seed.
    """

    def __init__(self, jitter: float, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        if jitter < 0:
            raise ValueError(f"reconnect_jitter: expected a duration >= 0, got {jitter!r}")
        self.jitter = jitter
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._reconnecting = True  # the worker's first success counts as a reconnect
        self._until = 0.0
        self.edge_seq = 0  # records above it were appended after the reconnect
        self.holds = 0  # holds started so far
        self.last = 0.0  # the last hold drawn, in seconds

    @property
    def probing(self) -> bool:
        """True until the first success after a failure or the start (with a jitter)."""
        return self._reconnecting and self.jitter > 0

    def failed(self) -> None:
        """A send failed: the next success is a reconnect."""
        self._reconnecting = True

    def succeeded(self, oldest_created: Callable[[], float | None], newest_seq: int) -> float:
        """A send succeeded; ``newest_seq``: the highest seq read so far. Returns
        the hold started now, in seconds (0.0: none)."""
        if not self._reconnecting:
            return 0.0
        self._reconnecting = False
        if self.jitter <= 0 or self.left() > 0:
            return 0.0
        oldest = oldest_created()
        if oldest is None or self._wall() - oldest < self.jitter:
            return 0.0
        delay = self._rng.uniform(0.0, self.jitter)
        self._until = self._clock() + delay
        self.edge_seq = newest_seq
        self.holds += 1
        self.last = delay
        log.info("reconnected with a backlog from %.0f s ago: it waits %.3f s (reconnect_jitter "
                 "%.0f s) so that a fleet reconnecting together does not send it all at once",
                 self._wall() - oldest, delay, self.jitter)
        return delay

    def left(self) -> float:
        """Seconds the backlog still waits; 0.0 when it is not held."""
        if self._until <= 0.0:
            return 0.0
        left = self._until - self._clock()
        if left <= 0:
            self._until = 0.0
            return 0.0
        return left

    def end(self) -> None:
        """Release the backlog now (an explicit flush)."""
        self._until = 0.0
