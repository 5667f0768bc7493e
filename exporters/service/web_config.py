"""Basic auth and TLS in the Prometheus exporter-toolkit web-config format.

The same file an operator already writes for node_exporter works here::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt            # optional
      client_auth_type: RequireAndVerifyClientCert   # optional
    basic_auth_users:
      prometheus: $2y$10$...            # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')

With ``basic_auth_users`` set, every route except ``/healthz`` answers 401
without valid credentials.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from modelmon.config import ConfigError, load_yaml

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences"}


@dataclass(frozen=True)
class TLSConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: int = ssl.CERT_NONE


@dataclass
class WebConfig:
    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    # bcrypt is deliberately slow (~50-250 ms); remember verified pairs, as
    # exporter-toolkit does, so a 1 s scrape interval does not burn a core.
    _cache: OrderedDict[bytes, bool] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.users)

    def check_authorization(self, header: str | None) -> bool:
        """True when the ``Authorization`` header holds valid basic-auth credentials."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            # Spend comparable time for unknown users so they cannot be probed.
            bcrypt.checkpw(b"x", _DUMMY_HASH)
            return False
        key = hashlib.sha256(user.encode() + b"\0" + password.encode() + b"\0" + hashed).digest()
        with self._lock:
            if key in self._cache:
                return True
        ok = bcrypt.checkpw(password.encode(), hashed)
        if ok:
            with self._lock:
                self._cache[key] = True
                while len(self._cache) > 1024:
                    self._cache.popitem(last=False)
        return ok


_DUMMY_HASH = bcrypt.hashpw(b"modelmon", bcrypt.gensalt(rounds=10))


def _path(base: Path, value: Any, field_name: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field_name}: expected a file path, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.is_file():
        raise ConfigError(f"{field_name}: file {path} does not exist")
    return path


def web_config_from_mapping(data: Mapping[str, Any], base: Path) -> WebConfig:
    unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise ConfigError(
            f"{sorted(unknown)[0]}: unknown key; expected tls_server_config, basic_auth_users, "
            "http_server_config"
        )
    users: dict[str, bytes] = {}
    for user, hashed in (data.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(
                f"basic_auth_users.{user}: expected a bcrypt hash starting with $2y$ (create one "
                "with: htpasswd -nBC 10 '' | tr -d ':'), not a plain-text password"
            )
        users[str(user)] = hashed.encode()
    tls = None
    tls_data = data.get("tls_server_config")
    if tls_data:
        if not isinstance(tls_data, Mapping):
            raise ConfigError("tls_server_config: expected a mapping with cert_file and key_file")
        unknown = set(tls_data) - _TLS_KEYS
        if unknown:
            raise ConfigError(f"tls_server_config.{sorted(unknown)[0]}: unknown key")
        auth_type = tls_data.get("client_auth_type", "NoClientCert")
        if auth_type not in _CLIENT_AUTH:
            raise ConfigError(
                f"tls_server_config.client_auth_type: expected one of {', '.join(_CLIENT_AUTH)}, "
                f"got {auth_type!r}"
            )
        ca = tls_data.get("client_ca_file")
        tls = TLSConfig(
            cert_file=_path(base, tls_data.get("cert_file"), "tls_server_config.cert_file"),
            key_file=_path(base, tls_data.get("key_file"), "tls_server_config.key_file"),
            client_ca_file=_path(base, ca, "tls_server_config.client_ca_file") if ca else None,
            client_auth=_CLIENT_AUTH[auth_type],
        )
        if tls.client_auth == ssl.CERT_REQUIRED and tls.client_ca_file is None:
            raise ConfigError(
                "tls_server_config.client_ca_file: required when client_auth_type is "
                "RequireAndVerifyClientCert"
            )
    return WebConfig(tls=tls, users=users)


def load_web_config(path: Path | None) -> WebConfig:
    if path is None:
        return WebConfig()
    try:
        return web_config_from_mapping(load_yaml(path), path.parent)
    except ConfigError as exc:
        raise ConfigError(f"web config file {path}: {exc}") from None
