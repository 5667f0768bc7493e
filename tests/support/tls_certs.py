"""A throwaway PKI (CA, server and client certificates, made with the openssl
command) and TLS for loopback test servers that REQUIRE a client certificate.

``require_client_cert(server, pki)`` wraps the listening socket of any
``socketserver`` server before it starts: every accepted connection then does
a TLS handshake that fails unless the client shows a certificate signed by
the test CA.
"""

from __future__ import annotations

import socketserver
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # self-signed: a certificate, but not from the CA
    rogue_key: Path
    encrypted_client_key: Path  # the client key under a passphrase ("secret")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ec_key_and_csr(name: str, subject: str, cwd: Path) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=modelmon test CA",
             cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=edge-device")):
        _ec_key_and_csr(name, subject, d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
                 cwd=d)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "2", "-subj", "/CN=rogue", cwd=d)
    _openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:secret", "-out",
             "client-encrypted.key", cwd=d)
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
               d / "rogue.crt", d / "rogue.key", d / "client-encrypted.key")


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def require_client_cert(server: socketserver.BaseServer, pki: Pki) -> list[str]:
    """Serve TLS on ``server`` (not yet serving), requiring a client certificate.

    Returns a list the server appends the reason of each refused handshake to.
    The handshake runs in the thread that handles the connection, so a client
    that hangs mid-handshake holds only its own thread.
    """
    context = server_context(pki)
    refused: list[str] = []
    plain_socket = server.socket  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(  # type: ignore[attr-defined]
        plain_socket, server_side=True, do_handshake_on_connect=False)
    original = server.finish_request

    def finish_request(request, client_address) -> None:  # type: ignore[no-untyped-def]
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            refused.append(str(exc))
            return
        original(request, client_address)

    server.finish_request = finish_request  # type: ignore[method-assign]
    return refused
