"""What a log sink is, and the result of one send.

A sink ships a batch of spooled events and classifies every one of them:
delivered, retry later, or dead-letter (the destination refused it for good).
Sinks run on the shipper's background worker only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, overload

import orjson


class Item(NamedTuple):
    """One event to ship: its spool seq, its deterministic id, its JSON document.
    A named tuple: the shipper makes one per event, tens of thousands a second."""

    seq: int
    id: str
    source: bytes


class ItemBatch(Sequence[Item]):
    """A batch as the shipper reads it from the spool: (seq, payload) rows and the
    spool's id prefix. Items are made when a sink asks for them; the
    Elasticsearch sink builds its request from the rows and makes none (one
    object less per event, on the thread that competes with the caller)."""

    __slots__ = ("prefix", "rows")

    def __init__(self, prefix: str, rows: list[tuple[int, bytes]]) -> None:
        self.prefix = prefix
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> ItemBatch: ...

    def __getitem__(self, index: int | slice) -> Item | ItemBatch:
        if isinstance(index, slice):
            return ItemBatch(self.prefix, self.rows[index])
        seq, payload = self.rows[index]
        return Item(seq, self.prefix + str(seq), payload)

    def __iter__(self) -> Iterator[Item]:
        prefix = self.prefix
        for seq, payload in self.rows:
            yield Item(seq, prefix + str(seq), payload)

    def seqs(self) -> list[int]:
        return [row[0] for row in self.rows]


def seqs_of(items: Sequence[Item]) -> list[int]:
    if isinstance(items, ItemBatch):
        return items.seqs()
    return [item.seq for item in items]


@dataclass
class SendResult:
    delivered: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    dead: dict[str, list[int]] = field(default_factory=dict)  # reason -> seqs
    retry_after: float | None = None
    # The request's result label for log_bulk_requests_total.
    result: str = "ok"
    duration: float = 0.0  # seconds the send took, set by the shipper

    def add_dead(self, reason: str, seq: int) -> None:
        self.dead.setdefault(reason, []).append(seq)

    def merge(self, other: SendResult) -> None:
        self.delivered += other.delivered
        self.retry += other.retry
        for reason, seqs in other.dead.items():
            self.dead.setdefault(reason, []).extend(seqs)
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)
        if other.result != "ok":
            self.result = other.result

    @classmethod
    def all_retry(cls, items: Sequence[Item], result: str, retry_after: float | None = None
                  ) -> SendResult:
        return cls(retry=seqs_of(items), retry_after=retry_after, result=result)


class Sink(Protocol):
    """``send`` runs on the shipper's sender threads. A sink may set
    ``max_in_flight`` (default 1) to have that many ``send`` calls overlap, one
    batch each; it must then be safe to call from several threads."""

    name: str

    def send(self, items: Sequence[Item]) -> SendResult: ...

    def close(self) -> None: ...


def with_event_ids(items: Sequence[Item], result: SendResult) -> list[tuple[Item, bytes]]:
    """Documents with ``event.id`` set; an item that is not JSON is dead-lettered
    in ``result`` (it could never be delivered)."""
    out = []
    for item in items:
        try:
            out.append((item, with_event_id(item)))
        except orjson.JSONDecodeError as exc:
            result.add_dead(f"not a JSON document: {exc}", item.seq)
    return out


def with_event_id(item: Item) -> bytes:
    """The document with ``event.id`` set to the deterministic id, for sinks that
    cannot pass an id beside the document (Logstash, files): a downstream
    Elasticsearch output deduplicates with ``document_id => "%{[event][id]}"``."""
    doc = orjson.loads(item.source)
    if isinstance(doc, dict):
        event = doc.get("event")
        if not isinstance(event, dict):
            event = doc["event"] = {}
        event["id"] = item.id
    return orjson.dumps(doc)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        import time

        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None
