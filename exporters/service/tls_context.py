"""The server SSLContext of a ``tls_server_config``, built the way exporter-toolkit builds its.

Every failure names the field to fix (``tls_server_config.key_file: ...``).
Like exporter-toolkit, certificates are re-read when their files change, so
a renewed certificate is served without a restart; a renewal caught half
written keeps the previous context rather than refusing connections.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from modelmon.config import ConfigError
from modelmon.exporters.service.web_config import TLSConfig

log = logging.getLogger(__name__)


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for a passphrase.
    raise _EncryptedKey


@contextlib.contextmanager
def _pem_path(text: str | None, path: Path | None, field_name: str) -> Iterator[str]:
    """A path OpenSSL can read: the file, or inline PEM in an anonymous memory file."""
    if text is None:
        assert path is not None
        yield str(path)
        return
    if not hasattr(os, "memfd_create"):
        raise ConfigError(f"tls_server_config.{field_name}: inline PEM needs Linux here; "
                          f"use {field_name}_file")
    # memfd: the key is never written to a disk, not even a temporary file.
    fd = os.memfd_create(f"modelmon-{field_name}")
    try:
        os.write(fd, text.encode())
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _name(tls: TLSConfig, field_name: str) -> str:
    inline = getattr(tls, field_name) is not None
    path = getattr(tls, f"{field_name}_file")
    return f"tls_server_config.{field_name}" if inline else f"tls_server_config.{field_name}_file ({path})"


def _load_chain(ctx: ssl.SSLContext, tls: TLSConfig) -> None:
    with _pem_path(tls.cert, tls.cert_file, "cert") as cert, \
            _pem_path(tls.key, tls.key_file, "key") as key:
        try:
            ctx.load_cert_chain(cert, key, password=_no_password)
            return
        except _EncryptedKey:
            raise ConfigError(
                f"{_name(tls, 'key')}: the key is encrypted; modelmon serve cannot prompt "
                "for a passphrase: decrypt it (openssl pkey -in KEY -out KEY.plain) and keep "
                "it readable by this user only"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            error = exc
        # Which of the two is wrong? Parse the certificate alone to tell.
        try:
            ssl.create_default_context().load_verify_locations(cafile=cert)
        except (ssl.SSLError, OSError):
            raise ConfigError(
                f"{_name(tls, 'cert')}: not a PEM certificate ({error}); give the server "
                "certificate (-----BEGIN CERTIFICATE-----)"
            ) from None
    if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error):
        raise ConfigError(f"{_name(tls, 'key')}: does not match the certificate "
                          f"{_name(tls, 'cert')}; give the key the certificate was made for")
    raise ConfigError(
        f"{_name(tls, 'key')}: not a usable PEM private key ({error}); give the unencrypted "
        "key of the certificate (-----BEGIN PRIVATE KEY-----)"
    )


def build_context(tls: TLSConfig) -> ssl.SSLContext:
    """The SSLContext for ``tls``; raises ConfigError naming the field at fault."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        with warnings.catch_warnings():
            # TLS10/TLS11 are deprecated in Python; asked for, they are honoured.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = tls.min_version
            ctx.maximum_version = tls.max_version
    except (ValueError, ssl.SSLError) as exc:
        raise ConfigError(f"tls_server_config.min_version: not supported by this OpenSSL "
                          f"({ssl.OPENSSL_VERSION}): {exc}") from None
    if tls.ciphers:
        try:
            ctx.set_ciphers(":".join(tls.ciphers))
        except ssl.SSLError:
            raise ConfigError(f"tls_server_config.cipher_suites: none of {list(tls.ciphers)} is "
                              f"available in {ssl.OPENSSL_VERSION}") from None
    if tls.curve is not None:
        ctx.set_ecdh_curve(tls.curve)
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(ctx, tls)
    if tls.client_auth != ssl.CERT_NONE:
        try:
            if tls.client_ca is not None:
                ctx.load_verify_locations(cadata=tls.client_ca)
            else:
                ctx.load_verify_locations(cafile=str(tls.client_ca_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            field_name = "client_ca" if tls.client_ca is not None else "client_ca_file"
            raise ConfigError(f"tls_server_config.{field_name}: no PEM CA certificate could be "
                              f"read ({exc}); give the CA that signs the clients' "
                              "certificates") from None
        ctx.verify_mode = tls.client_auth  # type: ignore[assignment]
    return ctx


def _normal(san: str) -> str:
    try:
        return str(ipaddress.ip_address(san.strip()))
    except ValueError:
        return san


def peer_allowed(tls: TLSConfig, sock: ssl.SSLSocket) -> bool:
    """exporter-toolkit's client_allowed_sans: a SAN of the client's certificate
    (DNS, IP, e-mail or URI) must be listed, or the connection is closed."""
    if tls.client_allowed_sans is None:
        return True
    cert = sock.getpeercert()
    allowed = {_normal(s) for s in tls.client_allowed_sans}
    sans = cast("tuple[tuple[str, str], ...]", cert.get("subjectAltName", ()) if cert else ())
    return any(_normal(value) in allowed for _kind, value in sans)


class ContextSource:
    """The current SSLContext, rebuilt when a certificate or key file changes."""

    def __init__(self, tls: TLSConfig) -> None:
        self._tls = tls
        self._paths = [p for p in (tls.cert_file, tls.key_file, tls.client_ca_file) if p]
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._ctx = build_context(tls)

    def _stat(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._paths:
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def context(self) -> ssl.SSLContext:
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self._ctx = build_context(self._tls)
                    except ConfigError as exc:
                        log.error("keeping the previous TLS context: %s", exc)
        return self._ctx
