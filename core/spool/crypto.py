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
(a KMS: the ``modelmon_register_spool_key_providers`` hook). The
``cryptography`` package is needed only when encryption is configured
(``pip install 'modelmon[encryption]'``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError

MAGIC = b"MME1"
KEY_ID_LEN = 8
NONCE_LEN = 12
HEADER_LEN = len(MAGIC) + KEY_ID_LEN + NONCE_LEN
OVERHEAD = HEADER_LEN + 16  # the GCM tag
_AAD = b"modelmon-spool-v1"
_KEY_SIZES = (16, 24, 32)
ENCRYPTION_KEYS = ("key_file", "key_env", "previous_keys", "kms")


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
            raise ConfigError(
                "spool encryption needs the 'cryptography' package: "
                "pip install 'modelmon[encryption]'"
            ) from None
        for key in keys:
            if len(key) not in _KEY_SIZES:
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


# -- configuration -------------------------------------------------------------

KeyProvider = Callable[[Mapping[str, Any]], Sequence[bytes]]


def parse_key(text: bytes, field: str) -> bytes:
    """A key from its file or variable: 64 (48, 32) hex digits, base64 of 32
    (24, 16) bytes, or the raw bytes of a 16/24/32-byte file."""
    stripped = text.strip()
    try:
        if len(stripped) in (32, 48, 64):
            return binascii.unhexlify(stripped)
    except (binascii.Error, ValueError):
        pass
    try:
        decoded = base64.b64decode(stripped, validate=True)
        if len(decoded) in _KEY_SIZES:
            return decoded
    except (binascii.Error, ValueError):
        pass
    if len(text) in _KEY_SIZES:
        return text
    raise ConfigError(
        f"{field}: not an AES key: expected 64 hex digits or base64 of 32 bytes (make one with "
        "'openssl rand -hex 32'), got something of length " f"{len(stripped)}")


def _one_key(spec: Mapping[str, Any], field: str, base_dir: Path | None) -> bytes:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping with key_file or key_env")
    has_file, has_env = spec.get("key_file"), spec.get("key_env")
    if bool(has_file) == bool(has_env):
        raise ConfigError(f"{field}: give exactly one of key_file or key_env")
    if has_file:
        path = Path(str(has_file)).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{field}.key_file: cannot read {path} ({exc.strerror}); "
                              "give the path of the spool key") from None
        return parse_key(data, f"{field}.key_file")
    name = str(has_env)
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{field}.key_env: the environment variable {name} is not set "
                          "(or empty); set it to the spool key")
    return parse_key(value.encode(), f"{field}.key_env ({name})")


def cipher_from_config(section: Any, field: str, base_dir: Path | None = None,
                       providers: Mapping[str, KeyProvider] | None = None) -> SpoolCipher | None:
    """The cipher of an ``encryption:`` section, or None without one. Errors
    name ``field`` (e.g. ``edge.spool.encryption``) and the fix.

    Keys: ``key_file`` or ``key_env`` (the one that seals), ``previous_keys``
    (a list of ``{key_file|key_env}`` that only open), or ``kms: {provider:
    name, ...}``: the keys from a key-provider plugin, current first."""
    if section is None or section is False:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{field}: expected a mapping with key_file, key_env or kms")
    unknown = set(section) - set(ENCRYPTION_KEYS)
    if unknown:
        raise ConfigError(f"{field}: unknown key(s) {', '.join(sorted(unknown))}; known keys are "
                          f"{', '.join(ENCRYPTION_KEYS)}")
    keys: list[bytes] = []
    if section.get("kms") is not None:
        if section.get("key_file") or section.get("key_env"):
            raise ConfigError(f"{field}: give kms or key_file/key_env, not both")
        keys += _provider_keys(section["kms"], f"{field}.kms", providers)
    else:
        keys.append(_one_key(section, field, base_dir))
    previous = section.get("previous_keys") or []
    if not isinstance(previous, list):
        raise ConfigError(f"{field}.previous_keys: expected a list of {{key_file|key_env}}")
    for i, spec in enumerate(previous):
        keys.append(_one_key(spec, f"{field}.previous_keys[{i}]", base_dir))
    try:
        return SpoolCipher(keys)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{field}: {exc}") from None


def encryption_section(value: Any, field: str,
                       base_dir: Path | None = None) -> dict[str, Any] | None:
    """Check the shape of an ``encryption:`` section and make its key files
    absolute (relative to the config file), reading no key: a command that
    only reads the config (``modelmon edge status``) needs none."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field}: expected a mapping with key_file, key_env or kms")
    unknown = set(value) - set(ENCRYPTION_KEYS)
    if unknown:
        raise ConfigError(f"{field}: unknown key(s) {', '.join(sorted(unknown))}; known keys are "
                          f"{', '.join(ENCRYPTION_KEYS)}")

    def resolved(spec: Any, where: str) -> Any:
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with key_file or key_env")
        spec = dict(spec)
        if spec.get("key_file") and base_dir is not None:
            path = Path(str(spec["key_file"])).expanduser()
            spec["key_file"] = str(path if path.is_absolute() else base_dir / path)
        return spec

    out = resolved(value, field)
    previous = value.get("previous_keys") or []
    if not isinstance(previous, list):
        raise ConfigError(f"{field}.previous_keys: expected a list of {{key_file|key_env}}")
    out["previous_keys"] = [resolved(spec, f"{field}.previous_keys[{i}]")
                            for i, spec in enumerate(previous)]
    if out.get("kms") is None and not (out.get("key_file") or out.get("key_env")):
        raise ConfigError(f"{field}: give key_file, key_env or kms")
    return out


def key_providers() -> dict[str, KeyProvider]:
    """The key providers plugins registered (``modelmon_register_spool_key_providers``)."""
    from modelmon.plugin_manager import get_plugin_manager

    found: dict[str, KeyProvider] = {}

    def register(name: str, provider: KeyProvider) -> None:
        found[name] = provider

    get_plugin_manager().hook.modelmon_register_spool_key_providers(register=register)
    return found


def _provider_keys(spec: Any, field: str,
                   providers: Mapping[str, KeyProvider] | None) -> list[bytes]:
    if not isinstance(spec, Mapping) or not spec.get("provider"):
        raise ConfigError(f"{field}: expected a mapping with 'provider' (a key-provider plugin)")
    name = str(spec["provider"])
    providers = key_providers() if providers is None else providers
    provider = providers.get(name)
    if provider is None:
        raise ConfigError(
            f"{field}.provider: no key provider named {name!r}; available: "
            f"{', '.join(sorted(providers)) or 'none'} (is its plugin installed and allowed by "
            "MODELMON_PLUGINS?)")
    try:
        keys = [bytes(k) for k in provider({k: v for k, v in spec.items() if k != "provider"})]
    except Exception as exc:  # a KMS that cannot be reached: fail at start, say so
        raise ConfigError(f"{field}: key provider {name!r} failed: {exc}") from None
    if not keys:
        raise ConfigError(f"{field}: key provider {name!r} returned no key")
    return keys
