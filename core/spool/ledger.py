"""The spool's accounting: what was accepted and how each record ended.

A ``Tally`` counts records, the logical items they carry and their payload
bytes. A ``Ledger`` holds one tally per ending (delivered, dead-lettered,
dropped by reason) beside the accepted one, so that

    accepted == delivered + sum(dropped) + dead_lettered + pending

is arithmetic on named fields. In SQLite the ledger is the ``counters`` table,
one row per tally (``accepted``, ``delivered``, ``dead_lettered``,
``dropped:<reason>``); ``Ledger.rows`` and ``Ledger.from_rows`` are the only
places that know those row names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Ending = Literal["delivered", "dropped", "dead_lettered"]
_DROPPED = "dropped:"


@dataclass(slots=True)
class Tally:
    records: int = 0
    items: int = 0
    bytes: int = 0

    def add(self, records: int, items: int, size: int) -> None:
        self.records += records
        self.items += items
        self.bytes += size

    def __iadd__(self, other: Tally) -> Tally:
        self.add(other.records, other.items, other.bytes)
        return self

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.records + other.records, self.items + other.items,
                     self.bytes + other.bytes)

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.records - other.records, self.items - other.items,
                     self.bytes - other.bytes)

    def __bool__(self) -> bool:
        return bool(self.records or self.items or self.bytes)


@dataclass(slots=True)
class Ledger:
    accepted: Tally = field(default_factory=Tally)
    delivered: Tally = field(default_factory=Tally)
    dead_lettered: Tally = field(default_factory=Tally)
    dropped: dict[str, Tally] = field(default_factory=dict)

    def ended(self, ending: Ending, reason: str | None = None) -> Tally:
        """The tally of records that ended so (``reason``: the drop reason)."""
        if ending == "dropped":
            if not reason:
                raise ValueError("a drop needs a reason")
            return self.dropped_for(reason)
        return self.delivered if ending == "delivered" else self.dead_lettered

    def dropped_for(self, reason: str) -> Tally:
        tally = self.dropped.get(reason)
        if tally is None:
            tally = self.dropped[reason] = Tally()
        return tally

    def count_drop(self, reason: str, tally: Tally) -> None:
        """Records refused before they were stored: accepted and dropped at once."""
        self.accepted += tally
        dropped = self.dropped_for(reason)
        dropped += tally

    def removed(self) -> Tally:
        total = self.delivered + self.dead_lettered
        for tally in self.dropped.values():
            total += tally
        return total

    def pending(self) -> Tally:
        return self.accepted - self.removed()

    def merge(self, other: Ledger) -> None:
        self.accepted += other.accepted
        self.delivered += other.delivered
        self.dead_lettered += other.dead_lettered
        for reason, tally in other.dropped.items():
            dropped = self.dropped_for(reason)
            dropped += tally

    def copy(self) -> Ledger:
        out = Ledger()
        out.merge(self)
        return out

    def __bool__(self) -> bool:
        return bool(self.accepted or self.delivered or self.dead_lettered
                    or any(self.dropped.values()))

    # -- as stored --------------------------------------------------------------

    def rows(self) -> list[tuple[str, int, int, int]]:
        """(name, records, items, bytes) per non-empty tally: the counters table."""
        named = [("accepted", self.accepted), ("delivered", self.delivered),
                 ("dead_lettered", self.dead_lettered)]
        named += [(_DROPPED + reason, t) for reason, t in self.dropped.items()]
        return [(name, t.records, t.items, t.bytes) for name, t in named if t]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, int, int]]) -> Ledger:
        ledger = cls()
        for name, records, items, size in rows:
            if name.startswith(_DROPPED):
                ledger.dropped_for(name[len(_DROPPED):]).add(records, items, size)
            elif name in ("accepted", "delivered", "dead_lettered"):
                getattr(ledger, name).add(records, items, size)
            # An unknown name is from a newer version: not ours to count.
        return ledger
