"""Encryption at rest: every payload sealed with AES-256-GCM before it reaches
the journal or SQLite, so no plaintext of an event or a sample rests on disk.

A sealed payload (40 bytes longer than the plaintext)::

    "MME1" | key id (8 ASCII hex digits) | nonce (12 random bytes) | ciphertext | tag (16)

The key id is the first 4 bytes of SHA-256 of the key, in hex: it names the
key without revealing it, so a record says which key opens it. Rotation: the
first key seals new records; the others (``previous_keys``) only open what
was sealed under them, until the backlog written under them is gone.

A random 96-bit nonce per record: NIST SP 800-38D bounds one key to 2**32
records sealed so; rotate a key well before (a spool sealing 1,000 records a
second reaches that in 136 years).

Keys come from a file or an environment variable (64 hex digits, or base64
of 32 bytes; a 16- or 24-byte key gives AES-128 or AES-192), or from a plugin
(a KMS: the ``modelmon_register_spool_key_providers`` hook); ``keys``
reads them from the configuration. The
``cryptography`` package is needed only when encryption is configured
(``pip install 'modelmon[encryption]'``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

MAGIC = b"MME1"
KEY_ID_LEN = 8
NONCE_LEN = 12
HEADER_LEN = len(MAGIC) + KEY_ID_LEN + NONCE_LEN
OVERHEAD = HEADER_LEN + 16  # the GCM tag
_AAD = b"modelmon-spool-v1"
KEY_SIZES = (16, 24, 32)


class Undecryptable(ValueError):
    """A sealed payload that no configured key opens (unknown key id, or
    altered: the GCM tag does not match)."""


class SpoolKeyMismatch(ValueError):
    """The spool holds records that the configured keys cannot open."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LEN]


def is_sealed(payload: bytes) -> bool:
    return payload[:4] == MAGIC and len(payload) >= OVERHEAD


class SpoolCipher:
    """Seals with the first key, opens with any of ``keys``."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SpoolCipher needs at least one key")
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            from modelmon.config import ConfigError

            raise ConfigError(
                "spool encryption needs the 'cryptography' package: "
                "pip install 'modelmon[encryption]'"
            ) from None
        for key in keys:
            if len(key) not in KEY_SIZES:
                raise ValueError(f"an AES key is 16, 24 or 32 bytes, got {len(key)}")
        self._by_id = {key_id(k).encode(): AESGCM(k) for k in keys}
        self.current_id = key_id(keys[0])
        self._current = self._by_id[self.current_id.encode()]
        self._prefix = MAGIC + self.current_id.encode()
        self.key_ids = frozenset(k.decode() for k in self._by_id)

    def seal(self, payload: bytes) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return self._prefix + nonce + self._current.encrypt(nonce, payload, _AAD)

    def open(self, sealed: bytes) -> bytes:
        """The plaintext of ``sealed``. A payload without the header was written
        before encryption was switched on: it is returned as it is."""
        if not is_sealed(sealed):
            return sealed
        aead = self._by_id.get(bytes(sealed[4:HEADER_LEN - NONCE_LEN]))
        if aead is None:
            raise Undecryptable(f"unknown key id {sealed[4:12].decode(errors='replace')}")
        nonce = sealed[HEADER_LEN - NONCE_LEN:HEADER_LEN]
        try:
            return bytes(aead.decrypt(nonce, sealed[HEADER_LEN:], _AAD))
        except Exception:  # cryptography's InvalidTag
            raise Undecryptable("authentication failed (altered or corrupt record)") from None


KEY_META = "key:"  # meta rows "key:<id>" -> the last seq sealed under that key


def key_ids_of(rows: Sequence[tuple[int, float, int, int, bytes]]) -> dict[str, int]:
    """The last seq sealed under each key among journalled rows (recovery, salvage)."""
    found: dict[str, int] = {}
    for row in rows:
        payload = row[4]
        if payload[:4] == MAGIC:
            kid = bytes(payload[4:HEADER_LEN - NONCE_LEN]).decode("ascii", "replace")
            found[kid] = max(found.get(kid, 0), row[0])
    return found


def note_key_ids(conn: sqlite3.Connection, last_seqs: Mapping[str, int]) -> None:
    """Remember, in the store's meta table, the last seq sealed under each key
    (inside the transaction that stores those rows)."""
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value ="
        " CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
        [(KEY_META + kid, str(seq)) for kid, seq in last_seqs.items()],
    )


def check_store_keys(conn: sqlite3.Connection, cipher: SpoolCipher | None, where: Path) -> None:
    """``check_keys`` for the records pending in a store, cheaply: a key whose
    last sealed seq is below the oldest pending record cannot seal any of
    them, so the pending records are scanned only when the meta table names
    a key that may still be in use and is not configured."""
    low = conn.execute("SELECT MIN(seq) FROM records").fetchone()[0]
    if low is None:
        return
    maybe = {str(key)[len(KEY_META):] for key, value in conn.execute(
        "SELECT key, value FROM meta WHERE key LIKE ?", (KEY_META + "%",)) if int(value) >= low}
    known = cipher.key_ids if cipher is not None else frozenset()
    if maybe - known:
        check_keys(key_ids_in(conn), cipher, where)


def key_ids_in(conn: sqlite3.Connection) -> dict[str, int]:
    """Pending records per key id (``""``: not sealed), read from SQLite."""
    rows = conn.execute(
        "SELECT CASE WHEN substr(payload, 1, 4) = ? THEN CAST(substr(payload, 5, ?) AS TEXT)"
        " ELSE '' END AS kid, COUNT(*) FROM records GROUP BY kid", (MAGIC, KEY_ID_LEN),
    ).fetchall()
    return {str(kid): int(n) for kid, n in rows}


def check_keys(found: Mapping[str, int], cipher: SpoolCipher | None, where: Path) -> None:
    """Refuse to start on records the configured keys cannot open."""
    sealed = {kid: n for kid, n in found.items() if kid}
    if cipher is None:
        if sealed:
            raise SpoolKeyMismatch(
                f"{where} holds {sum(sealed.values())} encrypted records (key id(s) "
                f"{', '.join(sorted(sealed))}) but no encryption key is configured; configure "
                "the key they were written with")
        return
    unknown = {kid: n for kid, n in sealed.items() if kid not in cipher.key_ids}
    if unknown:
        raise SpoolKeyMismatch(
            f"{where} holds {sum(unknown.values())} records written under key id(s) "
            f"{', '.join(sorted(unknown))}, which the configured keys (id(s) "
            f"{', '.join(sorted(cipher.key_ids))}) cannot open; list that key under "
            "previous_keys (or restore it) so they can be delivered")
