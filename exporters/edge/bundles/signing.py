"""Ed25519 keys for configuration bundles: the cloud signs, devices verify.

Only the public key goes to the devices, so a device that is taken apart
cannot sign a bundle for the rest of the fleet (an HMAC key could). Keys are
PEM files: PKCS#8 for the private key (owner-only), SubjectPublicKeyInfo for
the public one, as ``openssl genpkey -algorithm ed25519`` writes them.

The edge agent verifies in a short-lived child process
(:func:`subprocess_verifier`, this module run with ``-m``): the
``cryptography`` library costs an agent about 9 MiB of RSS for as long as
it runs (measured: 67 vs 76 MiB), for a check made once per new bundle and
once at start. The child gets the key's path on its command line and the
signature and manifest on stdin, and answers with its exit status.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


class BundleKeyError(ValueError):
    """A key file that cannot be used; the message names the file and the fix."""


class VerifierUnavailable(OSError):
    """The signature could not be checked at all (the child process failed): not a
    verdict on the bundle, so the device tries again instead of refusing it."""


# (signature, signed data) -> whether the signature is the key's.
Verifier = Callable[[bytes, bytes], bool]
# DER of an Ed25519 SubjectPublicKeyInfo, before its 32 key bytes (RFC 8410).
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


_INSTALL = ("bundle signatures need the 'cryptography' package: "
            "pip install 'modelmon[bundles]'")


def _crypto() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:  # pragma: no cover - installed with the test extra
        raise BundleKeyError(_INSTALL) from None


def generate_keypair(private_path: Path, public_path: Path) -> None:
    """Write a new key pair; the private key owner-only, never over an existing file."""
    _crypto()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    for path in (private_path, public_path):
        if path.exists():
            raise BundleKeyError(f"{path} exists; remove it or choose another --out")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise BundleKeyError(f"signing key {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise BundleKeyError(f"signing key {path}: not an unencrypted PEM private key ({exc}); "
                        "make one with 'modelmon edge bundle keygen'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleKeyError(f"signing key {path}: an Ed25519 key is required, got "
                        f"{type(key).__name__}; make one with 'modelmon edge bundle keygen'")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise BundleKeyError(f"public key {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise BundleKeyError(f"public key {path}: not a PEM public key ({exc}); use the .pub file "
                        "'modelmon edge bundle keygen' wrote") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleKeyError(f"public key {path}: an Ed25519 key is required, got {type(key).__name__}")
    return key


def check_public_key_file(path: Path) -> None:
    """That ``path`` holds an Ed25519 public key in PEM, read without ``cryptography``."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleKeyError(f"public key {path}: cannot read it ({exc})") from None
    lines = [line.strip() for line in text.strip().splitlines()]
    der = b""
    if len(lines) >= 3 and lines[0] == "-----BEGIN PUBLIC KEY-----" and \
            lines[-1] == "-----END PUBLIC KEY-----":
        try:
            der = base64.b64decode("".join(lines[1:-1]), validate=True)
        except (binascii.Error, ValueError):
            der = b""
    if len(der) != len(_ED25519_SPKI_PREFIX) + 32 or not der.startswith(_ED25519_SPKI_PREFIX):
        raise BundleKeyError(f"public key {path}: not an Ed25519 public key in PEM; use the "
                             ".pub file 'modelmon edge bundle keygen' wrote")


def key_verifier(key: Ed25519PublicKey) -> Verifier:
    """Verification in this process (the command line's tools)."""
    return lambda signature, data: verify(key, signature, data)


def subprocess_verifier(public_key: Path, timeout: float = 60.0) -> Verifier:
    """Verification in a child process: ``cryptography`` never loads into the agent."""

    def check(signature: bytes, data: bytes) -> bool:
        try:
            done = subprocess.run(
                [sys.executable, "-m", __name__, str(public_key)],
                input=len(signature).to_bytes(4, "big") + signature + data,
                capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VerifierUnavailable(f"cannot run the signature check: {exc}") from None
        if done.returncode in (0, 1):
            return done.returncode == 0
        raise VerifierUnavailable("the signature check failed: "
                                  + done.stderr.decode(errors="replace").strip()[-300:])

    return check


def _main(argv: list[str]) -> int:
    """``python -m modelmon.exporters.edge.bundles.signing PUBLIC_KEY`` < length, sig, data."""
    payload = sys.stdin.buffer.read()
    size = int.from_bytes(payload[:4], "big")
    signature, data = payload[4:4 + size], payload[4 + size:]
    try:
        key = load_public_key(Path(argv[0]))
    except BundleKeyError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0 if verify(key, signature, data) else 1


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
