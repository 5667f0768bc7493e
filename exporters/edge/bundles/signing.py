"""Ed25519 keys for configuration bundles: the cloud signs, devices verify.

Only the public key goes to the devices, so a device that is taken apart
cannot sign a bundle for the rest of the fleet (an HMAC key could). Keys are
PEM files: PKCS#8 for the private key (owner-only), SubjectPublicKeyInfo for
the public one, as ``openssl genpkey -algorithm ed25519`` writes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


class BundleKeyError(ValueError):
    """A key file that cannot be used; the message names the file and the fix."""


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


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
