"""Basic auth, TLS and HTTP settings in the Prometheus exporter-toolkit web-config format.

The same file an operator already writes for node_exporter works here::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                          # optional
      client_auth_type: RequireAndVerifyClientCert    # optional
      min_version: TLS13                              # optional
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2y$10$...            # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')
    rate_limit: {interval: 100ms, burst: 20}

Every key of exporter-toolkit's docs/web-configuration.md is either honoured as
exporter-toolkit honours it or refused here, at start, with a message naming
it: a security setting that is silently ignored is worse than an error.
The differences Python's ssl module or gunicorn force are listed in
docs/security.md. With ``basic_auth_users`` set, every route except
``/healthz`` answers 401 without valid credentials.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError, load_yaml
from modelmon.exporters.service.web_auth import BasicAuth

# exporter-toolkit's names -> the OpenSSL names of the same suites (RFC 8446 / IANA
# names on the left, as Go's tls.CipherSuites() spells them).
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# TLS 1.3 suites are not configurable, in Go as in OpenSSL: Go ignores them in
# cipher_suites, and so do we.
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
          "X25519": "X25519"}
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Each value says whether the TLS layer asks for a certificate and verifies it.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    # Go requests a certificate and never verifies it: every client gets in,
    # exactly as without asking (nothing downstream reads the certificate).
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_REQUIRED = {"RequireAnyClientCert", "RequireClientCert"}
# exporter-toolkit's extraHTTPHeaders: the only headers it lets a config set,
# with the allowed values where they form an enumeration.
HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = ("cert_file", "key_file", "cert", "key", "client_ca_file", "client_ca",
             "client_auth_type", "client_allowed_sans", "cipher_suites", "curve_preferences",
             "min_version", "max_version", "prefer_server_cipher_suites")


@dataclass(frozen=True)
class TLSConfig:
    """What ``tls_server_config`` asks of the TLS layer (see tls_context.py)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth: int = ssl.CERT_NONE
    cert: str | None = None
    key: str | None = field(default=None, repr=False)
    client_ca: str | None = None
    client_allowed_sans: tuple[str, ...] | None = None
    ciphers: tuple[str, ...] = ()          # OpenSSL names, in the configured order
    curve: str | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    prefer_server_cipher_suites: bool = True


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: one request per ``interval_seconds``, ``burst`` at once."""

    interval_seconds: float
    burst: int


@dataclass
class WebConfig:
    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    _auth: BasicAuth | None = field(default=None, repr=False)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.users)

    @property
    def basic_auth(self) -> BasicAuth:
        if self._auth is None:
            self._auth = BasicAuth(self.users)
        return self._auth

    def check_authorization(self, header: str | None) -> bool:
        """True when the ``Authorization`` header holds valid basic-auth credentials."""
        return self.basic_auth.check(header) is True


def _mapping(value: Any, field_name: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field_name}: expected a mapping with keys {', '.join(known)}")
    for key in value:
        if key not in known:
            raise ConfigError(f"{field_name}.{key}: unknown key; expected one of {', '.join(known)}")
    return value


def _path(base: Path, value: Any, field_name: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field_name}: expected a file path, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.is_file():
        raise ConfigError(f"{field_name}: file {path} does not exist")
    return path


def _strings(value: Any, field_name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{field_name}: expected a list of strings, got {value!r}")
    return value


def _choice(value: Any, choices: Mapping[str, Any], field_name: str) -> Any:
    if value not in choices:
        raise ConfigError(f"{field_name}: expected one of {', '.join(choices)}, got {value!r}")
    return choices[value]


def _pem_or_file(tls: Mapping[str, Any], base: Path, inline: str, file_key: str,
                 ) -> tuple[str | None, Path | None]:
    text, path = tls.get(inline), tls.get(file_key)
    if text is not None and path is not None:
        raise ConfigError(f"tls_server_config.{inline}: set {inline} or {file_key}, not both")
    if text is not None:
        if not isinstance(text, str) or "-----BEGIN" not in text:
            raise ConfigError(f"tls_server_config.{inline}: expected PEM text (-----BEGIN ...)")
        return text, None
    if path is None:
        return None, None
    return None, _path(base, path, f"tls_server_config.{file_key}")


def _tls_from_mapping(tls: Mapping[str, Any], base: Path) -> TLSConfig:
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in _UNVERIFIED_REQUIRED:
        raise ConfigError(
            f"tls_server_config.client_auth_type: {auth_type} (a certificate required but "
            "never verified) cannot be enforced with Python's ssl module, and admits any "
            "self-made certificate anyway; use RequireAndVerifyClientCert with client_ca_file "
            "(exporter-toolkit's own advice: the other values are insecure)"
        )
    client_auth = _choice(auth_type, CLIENT_AUTH, "tls_server_config.client_auth_type")
    cert, cert_file = _pem_or_file(tls, base, "cert", "cert_file")
    key, key_file = _pem_or_file(tls, base, "key", "key_file")
    client_ca, client_ca_file = _pem_or_file(tls, base, "client_ca", "client_ca_file")
    if cert is None and cert_file is None:
        raise ConfigError("tls_server_config.cert_file: missing; set cert_file (or cert)")
    if key is None and key_file is None:
        raise ConfigError("tls_server_config.key_file: missing; set key_file (or key)")
    has_ca = client_ca is not None or client_ca_file is not None
    if has_ca and auth_type == "NoClientCert":
        raise ConfigError(
            "tls_server_config.client_ca_file: set without client_auth_type; set "
            "client_auth_type: RequireAndVerifyClientCert (or remove client_ca_file)"
        )
    if client_auth != ssl.CERT_NONE and not has_ca:
        # Go would verify against the system's public roots: any certificate a
        # public CA issued would get in, which nobody means.
        raise ConfigError(
            f"tls_server_config.client_ca_file: required with client_auth_type: {auth_type}; "
            "name the CA that signs your clients' certificates"
        )
    sans = None
    if tls.get("client_allowed_sans") is not None:
        sans = tuple(_strings(tls["client_allowed_sans"], "tls_server_config.client_allowed_sans"))
        if client_auth == ssl.CERT_NONE:
            raise ConfigError(
                "tls_server_config.client_allowed_sans: needs client_auth_type "
                "RequireAndVerifyClientCert (or VerifyClientCertIfGiven): without a verified "
                "client certificate there is no SAN to check"
            )
    ciphers = []
    for name in _strings(tls.get("cipher_suites") or [], "tls_server_config.cipher_suites"):
        if name in TLS13_SUITES:
            continue
        ciphers.append(_choice(name, {**CIPHER_SUITES, **dict.fromkeys(TLS13_SUITES)},
                               "tls_server_config.cipher_suites"))
    if tls.get("cipher_suites") and not ciphers:
        raise ConfigError(
            "tls_server_config.cipher_suites: lists only TLS 1.3 suites, which are not "
            "configurable; set min_version: TLS13 instead, or list TLS 1.2 suites"
        )
    curves = _strings(tls.get("curve_preferences") or [], "tls_server_config.curve_preferences")
    for name in curves:
        _choice(name, CURVES, "tls_server_config.curve_preferences")
    if len(curves) > 1:
        raise ConfigError(
            "tls_server_config.curve_preferences: Python's ssl module sets one curve; list "
            "one (e.g. [X25519]) or remove the key for OpenSSL's default list"
        )
    min_version = _choice(tls.get("min_version", "TLS12"), TLS_VERSIONS,
                          "tls_server_config.min_version")
    max_version = _choice(tls.get("max_version", "TLS13"), TLS_VERSIONS,
                          "tls_server_config.max_version")
    if min_version > max_version:
        raise ConfigError(
            f"tls_server_config.min_version: {tls.get('min_version')} is above max_version "
            f"{tls.get('max_version')}; no client could connect"
        )
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ConfigError(f"tls_server_config.prefer_server_cipher_suites: expected true or "
                          f"false, got {prefer!r}")
    return TLSConfig(
        cert_file=cert_file, key_file=key_file, client_ca_file=client_ca_file,
        client_auth=client_auth, cert=cert, key=key, client_ca=client_ca,
        client_allowed_sans=sans, ciphers=tuple(ciphers),
        curve=CURVES[curves[0]] if curves else None,
        min_version=min_version, max_version=max_version, prefer_server_cipher_suites=prefer,
    )


def _headers_from_mapping(http: Mapping[str, Any]) -> dict[str, str]:
    if http.get("http2") is True:
        raise ConfigError(
            "http_server_config.http2: modelmon serve speaks HTTP/1.1 only (gunicorn's HTTP/2 "
            "holds a thread per connection, which idle clients could use to starve the "
            "scrape); remove the key or set it to false"
        )
    if http.get("http2") not in (None, False):
        raise ConfigError(f"http_server_config.http2: expected true or false, got "
                          f"{http['http2']!r}")
    headers = http.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ConfigError("http_server_config.headers: expected a mapping of header: value")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name not in HEADERS:
            raise ConfigError(f"http_server_config.headers.{name}: this header can not be "
                              f"configured; allowed: {', '.join(HEADERS)}")
        if not isinstance(value, str):
            raise ConfigError(f"http_server_config.headers.{name}: expected a string")
        if HEADERS[name] and value not in HEADERS[name]:
            raise ConfigError(f"http_server_config.headers.{name}: expected one of "
                              f"{', '.join(HEADERS[name])}, got {value!r}")
        if value:  # exporter-toolkit: "Unset if blank"
            out[name] = value
    return out


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(value: Any, field_name: str) -> float:
    """Seconds of a Go duration string (``100ms``, ``1m30s``) or 0."""
    if value == 0 or value == "0":
        return 0.0
    text = value if isinstance(value, str) else ""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{field_name}: expected a duration such as 100ms, 1s or 1m30s, "
                          f"got {value!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _rate_limit_from_mapping(data: Mapping[str, Any]) -> RateLimit | None:
    interval = _go_duration(data.get("interval", 0), "rate_limit.interval")
    if interval == 0:
        return None  # exporter-toolkit: "set to 0 to disable rate limiter"
    burst = data.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"rate_limit.burst: expected a positive integer (0 would refuse every "
                          f"request), got {burst!r}")
    return RateLimit(interval, burst)


def web_config_from_mapping(data: Mapping[str, Any], base: Path) -> WebConfig:
    data = _mapping(data, "web config", _TOP_KEYS)
    users: dict[str, bytes] = {}
    for user, hashed in (data.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not re.fullmatch(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}",
                                                            hashed):
            raise ConfigError(
                f"basic_auth_users.{user}: expected a bcrypt hash starting with $2y$ (create one "
                "with: htpasswd -nBC 10 '' | tr -d ':'), not a plain-text password"
            )
        users[str(user)] = hashed.encode()
    tls_data = _mapping(data.get("tls_server_config"), "tls_server_config", _TLS_KEYS)
    http = _mapping(data.get("http_server_config"), "http_server_config", ("http2", "headers"))
    rate = _mapping(data.get("rate_limit"), "rate_limit", ("interval", "burst"))
    return WebConfig(
        tls=_tls_from_mapping(tls_data, base) if tls_data else None,
        users=users,
        headers=_headers_from_mapping(http),
        rate_limit=_rate_limit_from_mapping(rate) if rate else None,
    )


def load_web_config(path: Path | None) -> WebConfig:
    if path is None:
        return WebConfig()
    try:
        return web_config_from_mapping(load_yaml(path), path.parent)
    except ConfigError as exc:
        raise ConfigError(f"web config file {path}: {exc}") from None
