"""Ed25519 keys that sign audit checkpoints, and the pinned public keys that verify them.

The private key lives in ``DATA_DIR/keys/audit-signing.pem`` (PKCS8 PEM, mode
0600) and its public half in ``audit-signing.pub.pem``. A key is named by its
key id: the first 16 hex digits of SHA-256 over the raw 32-byte public key.
Verifiers never trust a key carried inside a checkpoint: they look the
checkpoint's key id up among public keys they were given (pinned), so a
checkpoint signed by any other key is refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from watchfloor.security.keys import AUDIT_PRIVATE, AUDIT_PUBLIC, write_private

logger = logging.getLogger(__name__)

PRIVATE_NAME = AUDIT_PRIVATE
PUBLIC_NAME = AUDIT_PUBLIC
RETIRED_GLOB = "audit-signing-*.pub.pem"
"""Public keys of retired signing keys, kept so old checkpoints still verify."""


class SignerError(Exception):
    """A signing key is missing, unreadable or not an Ed25519 key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class AuditSigner:
    """An Ed25519 private key and its key id; signs checkpoint bytes."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        """Hex Ed25519 signature of ``message``."""
        return self.private_key.sign(message).hex()


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    """True when ``signature_hex`` is a valid signature of ``message`` by ``public_key``."""
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def generate_signing_key(keys_dir: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new key pair into ``keys_dir``; return (private path, public path).

    The private file is created with mode 0600 from the start (never written
    world-readable and chmodded later). Refuses to replace an existing key
    unless ``overwrite``: losing the key means new checkpoints carry a new key id.
    """
    directory = Path(keys_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if private_path.exists() and not overwrite:
        raise SignerError(f"{private_path} already exists")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(private_path, pem, 0o600)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(public_path, public_pem, 0o644)
    logger.info(
        "audit signing key created key_id=%s path=%s", key_id(key.public_key()), private_path
    )
    return private_path, public_path


def rotate_signing_key(keys_dir: str | Path) -> AuditSigner:
    """Retire the current key (its public half kept as ``audit-signing-<key id>.pub.pem``,
    so old checkpoints still verify) and make a new one; return the new signer."""
    directory = Path(keys_dir)
    old = load_signer(directory)
    retired = directory / f"audit-signing-{old.key_id}.pub.pem"
    public_pem = old.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(retired, public_pem, 0o644)
    generate_signing_key(directory, overwrite=True)
    return load_signer(directory)


def load_signer(keys_dir: str | Path) -> AuditSigner:
    """The audit signing key of ``keys_dir``; :class:`SignerError` when absent or bad."""
    path = Path(keys_dir) / PRIVATE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SignerError(f"no audit signing key at {path}: run 'watchfloor keys init'") from None
    except OSError as exc:
        raise SignerError(f"cannot read {path}: {exc}") from None
    if path.stat().st_mode & 0o077:
        logger.warning("audit signing key is readable by others path=%s", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise SignerError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignerError(f"{path} is not an Ed25519 key")
    return AuditSigner(key)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise SignerError(f"no public key at {path}") from None
    except ValueError as exc:
        raise SignerError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignerError(f"{path} is not an Ed25519 public key")
    return key


def pinned_keys(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id, the form verifiers look checkpoints' keys up in."""
    return {key_id(k): k for k in keys}


def default_public_keys(keys_dir: str | Path) -> dict[str, Ed25519PublicKey]:
    """The current and retired audit public keys of a data directory's ``keys/``."""
    directory = Path(keys_dir)
    paths = [directory / PUBLIC_NAME, *sorted(directory.glob(RETIRED_GLOB))]
    return pinned_keys(load_public_key(p) for p in paths if p.exists())


def as_pinned(
    keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey],
) -> dict[str, Ed25519PublicKey]:
    """Accept either a key-id mapping or plain keys; always return a mapping by key id."""
    if isinstance(keys, Mapping):
        return pinned_keys(keys.values())
    return pinned_keys(keys)
