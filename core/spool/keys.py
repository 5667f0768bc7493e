"""Spool keys from the configuration: an ``encryption:`` section (under
``edge.spool`` or ``logs.spool``) -> a ``SpoolCipher``. Errors name the field
and the fix; no message ever contains a key."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError

from .crypto import KEY_SIZES as _KEY_SIZES
from .crypto import SpoolCipher

ENCRYPTION_KEYS = ("key_file", "key_env", "previous_keys", "kms")

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

    def resolved(spec: Any, where: str) -> dict[str, Any]:
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with key_file or key_env")
        out = dict(spec)
        if out.get("key_file") and base_dir is not None:
            path = Path(str(out["key_file"])).expanduser()
            out["key_file"] = str(path if path.is_absolute() else base_dir / path)
        return out

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
