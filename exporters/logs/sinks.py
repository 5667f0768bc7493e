"""What a log sink is, and what it is given.

A sink ships a batch of spooled events and classifies every one of them in a
``SendResult`` (the delivery worker's, ``modelmon.spool.destination``):
delivered, retry later, or dead-letter (the destination refused it for good).
Sinks run on the delivery worker's sender threads only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol, overload

import orjson

from modelmon.spool.destination import SendResult, seqs_of

__all__ = ["Item", "ItemBatch", "SendResult", "Sink", "parse_retry_after", "seqs_of",
           "with_event_id", "with_event_ids"]


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


class Sink(Protocol):
    """``send`` runs on the delivery worker's sender threads. A sink may set
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
