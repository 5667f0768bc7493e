"""What a log sink is, and what it is given.

A sink ships a batch of spooled events and classifies every one of them in a
``SendResult`` (the delivery worker's, ``modelmon.spool.destination``):
delivered, retry later, or dead-letter (the destination refused it for good).
Sinks run on the delivery worker's sender threads only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, overload

import orjson

from modelmon.spool.destination import SendResult, seqs_of

if TYPE_CHECKING:
    import ssl

__all__ = ["Item", "ItemBatch", "OnceLog", "Secret", "SendResult", "Sink", "check_client_cert",
           "client_tls_context", "documents", "parse_retry_after", "seqs_of", "split_userinfo", "tls_files", "with_event_id", "with_event_ids"]


class Secret(str):
    """A password or API key: the value itself wherever a string is used, but
    never in ``repr`` (options mappings get logged, printed and put in errors)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('********')"


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(``url`` without ``user:password@``, user, password): credentials in a
    URL would be shown wherever the URL is (logs, errors, reprs)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    netloc = parts.netloc.rpartition("@")[2]
    return (urlunsplit(parts._replace(netloc=netloc)), unquote(parts.username),
            unquote(parts.password or ""))


def client_tls_context(*, ca_file: str | None = None, cert_file: str | None = None,
                       key_file: str | None = None, verify_certs: bool = True) -> ssl.SSLContext:
    """A client TLS context: ``ca_file`` to verify the server, ``cert_file``
    and ``key_file`` to present a client certificate (servers that require one)."""
    import ssl

    context = ssl.create_default_context(cafile=ca_file)
    if not verify_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    return context


def _no_passphrase() -> str:
    # Without a callback OpenSSL asks for the passphrase on the terminal: a
    # daemon would hang at start. An encrypted key is an error instead.
    raise ValueError("the key is encrypted; give an unencrypted PEM key")


def check_client_cert(cert_file: str, key_file: str | None) -> None:
    """Raise ValueError (with OpenSSL's reason) unless the certificate and key
    load: what the HTTP clients would otherwise find at the first send."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file,
                                                                password=_no_passphrase)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ValueError(f"cannot load the client certificate and key ({exc}); give PEM "
                         "files, the key unencrypted") from None


def tls_files(*, ca_certs: str | None, ca_file: str | None, cert_file: str | None,
              key_file: str | None) -> tuple[str | None, str | None, str | None]:
    """(CA, client certificate, client key) from a sink's options, checked:
    ``ca_file`` is ``ca_certs`` by its Prometheus name."""
    if ca_certs and ca_file:
        raise ValueError("ca_file: set ca_file or ca_certs (the same thing), not both")
    if key_file and not cert_file:
        raise ValueError("cert_file: required when key_file is set")
    return ca_file or ca_certs, cert_file, key_file


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
        _set_event_id(doc, item.id)
    return orjson.dumps(doc)


def documents(items: Sequence[Item], result: SendResult) -> Iterator[tuple[Item, dict[str, Any]]]:
    """Each item's document, ``event.id`` set, for sinks that reshape documents
    (S3 objects, CloudWatch events, GELF); one that is not a JSON object is
    dead-lettered in ``result`` (it could never be delivered)."""
    for item in items:
        try:
            doc = orjson.loads(item.source)
        except orjson.JSONDecodeError as exc:
            result.add_dead(f"not a JSON document: {exc}", item.seq)
            continue
        if not isinstance(doc, dict):
            result.add_dead("not a JSON object", item.seq)
            continue
        _set_event_id(doc, item.id)
        yield item, doc


def _set_event_id(doc: dict[str, Any], event_id: str) -> None:
    event = doc.get("event")
    if not isinstance(event, dict):
        event = doc["event"] = {}
    event["id"] = event_id


class OnceLog:
    """Logs each kind of fault (its code) once per sink: a destination that refuses
    refuses again at every retry, and the log would repeat it for ever."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def error(self, code: str, message: str) -> None:
        with self._lock:
            if code in self._seen:
                return
            self._seen.add(code)
        self._log.error("%s", message)


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
