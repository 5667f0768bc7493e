"""Spool slots: several processes share one ``spool_dir``, each in a slot.

Each process (a gunicorn worker, say) takes the first free ``slot-N``
subdirectory (a spool's ``flock`` says whether it is free). A slot left with a
backlog by a process that is gone (a server scaled down to fewer workers)
would never drain, so every shipper adopts the unlocked slots it finds at
start and ships their backlog through its own sink.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from modelmon.spool import Spool, SpoolLocked, SpoolSettings, SpoolUnavailable
from modelmon.spool.crypto import SpoolKeyMismatch
from modelmon.spool.delivery import DeliveryObserver, DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Destination, SendPool
from modelmon.spool.files import make_private_dir

log = logging.getLogger(__name__)

MAX_SLOTS = 64


def open_slot(root: Path, settings: SpoolSettings) -> Spool:
    """The spool of the first free slot under ``root`` (made owner-only);
    ``SpoolUnavailable`` when ``root`` cannot be made or written."""
    try:
        make_private_dir(root)
    except OSError as exc:
        raise SpoolUnavailable(root, exc) from None
    for n in range(MAX_SLOTS):
        try:
            return Spool.from_settings(root / f"slot-{n}", settings)
        except SpoolLocked:
            continue
    raise SpoolLocked(
        f"all {MAX_SLOTS} spool slots under {root} are in use; give each group of "
        "processes its own spool_dir"
    )


class OrphanAdopter:
    """A thread that ships the backlog of every unlocked slot under ``root``
    (left by a process that is gone), one slot at a time, through the same
    destination and send pool as the live worker.

    Each event is sent with the id it was spooled with (the orphan's spool id
    and seq), so one that the dead process had sent but not yet acknowledged
    answers 409 (Elasticsearch) or carries the same ``event.id`` (Logstash,
    files): it is indexed once. Deliveries count in the orphan slot's own
    accounting, which stays on disk.
    """

    def __init__(
        self,
        root: Path,
        own: Path,
        spool_settings: SpoolSettings,
        destination: Destination,
        delivery: DeliverySettings,
        *,
        senders: SendPool,
        observer: DeliveryObserver,
        stop: threading.Event,
    ) -> None:
        self._root = root
        self._own = own
        self._spool_settings = spool_settings
        self._destination = destination
        self._delivery = delivery
        self._senders = senders
        self._observer = observer
        self._stop = stop
        self._retried_before = 0  # by the workers of slots already shipped
        self._current: DeliveryWorker | None = None
        self._thread = threading.Thread(target=self._run, name="modelmon-log-adopter",
                                        daemon=True)

    @property
    def retried(self) -> int:
        current = self._current
        return self._retried_before + (current.retried if current is not None else 0)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        for path in sorted(self._root.glob("slot-*")):
            # A slot without a database holds nothing; it may be one that a
            # starting process has just made and is about to lock.
            if path == self._own or self._stop.is_set() or not (path / "spool.db").exists():
                continue
            try:
                orphan = Spool.from_settings(path, self._spool_settings)
            except SpoolLocked:
                continue  # a live process owns it
            except SpoolKeyMismatch as exc:
                log.error("cannot ship orphaned log spool %s: %s", path, exc)
                continue
            except Exception:
                log.exception("cannot open orphaned log spool %s; its events stay there", path)
                continue
            try:
                self._ship(orphan)
            finally:
                orphan.close()

    def _ship(self, orphan: Spool) -> None:
        worker = DeliveryWorker(orphan, self._destination, self._delivery,
                                observer=self._observer, senders=self._senders,
                                stop=self._stop)
        self._current = worker
        try:
            shipped = worker.drain()
        except Exception:
            log.exception("shipping orphaned log spool %s stopped; the rest stays there",
                          orphan.path)
        else:
            if shipped:
                log.info("shipped %d log events that %s held", shipped, orphan.path)
        finally:
            self._retried_before += worker.retried
            self._current = None
