"""Where every key file lives in ``DATA_DIR/keys/``, and how the missing ones are made.

``keys/`` is mode 0700 and every secret file in it 0600:

* ``field-keys.json``: the field-encryption keyring (``security.crypto``);
* ``audit-signing.pem`` / ``audit-signing.pub.pem``: the Ed25519 key that signs
  audit checkpoints and its public half (``security.signer``; the public file
  is the one verifiers pin, so it may be 0644);
* ``signing/<source>.secrets``: producers' HMAC secrets (``security.signing``).

This module only names and writes the files, so that ``security.crypto`` and
``security.signer`` can import it; ``security.key_setup.init_keys`` (which needs
both) creates the missing ones.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

KEYS_DIR: Final = "keys"
FIELD_KEYRING: Final = "field-keys.json"
AUDIT_PRIVATE: Final = "audit-signing.pem"
AUDIT_PUBLIC: Final = "audit-signing.pub.pem"
SIGNING_DIR: Final = "signing"
DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


class KeyFileError(Exception):
    """A key file or the keys directory is missing, unreadable or malformed."""


def keys_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / KEYS_DIR


def field_keyring_path(data_dir: str | Path) -> Path:
    return keys_dir(data_dir) / FIELD_KEYRING


def audit_private_path(data_dir: str | Path) -> Path:
    return keys_dir(data_dir) / AUDIT_PRIVATE


def audit_public_path(data_dir: str | Path) -> Path:
    return keys_dir(data_dir) / AUDIT_PUBLIC


def signing_secrets_dir(data_dir: str | Path) -> Path:
    return keys_dir(data_dir) / SIGNING_DIR


def ensure_keys_dir(data_dir: str | Path) -> Path:
    """``DATA_DIR/keys`` with mode 0700 (created if missing)."""
    path = keys_dir(data_dir)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write ``data`` atomically to ``path`` with ``mode`` (0600) from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """One file of ``keys/`` as ``watchfloor keys list`` shows it (never its content)."""

    path: Path
    kind: str
    mode: int

    @property
    def too_open(self) -> bool:
        """Readable or writable by group or others (public keys may be world-readable)."""
        allowed = 0o044 if self.kind == "audit public key" else 0
        return bool(self.mode & 0o077 & ~allowed)


def list_key_files(data_dir: str | Path) -> list[KeyFile]:
    """Every key file present, with its kind and permission bits."""
    base = keys_dir(data_dir)
    kinds = [
        (field_keyring_path(data_dir), "field keyring"),
        (audit_private_path(data_dir), "audit signing key"),
        (audit_public_path(data_dir), "audit public key"),
    ]
    found = [KeyFile(p, kind, _mode(p)) for p, kind in kinds if p.exists()]
    if base.is_dir():
        for path in sorted(base.glob("audit-signing-*.pub.pem")):
            found.append(KeyFile(path, "audit public key", _mode(path)))
    signing = signing_secrets_dir(data_dir)
    if signing.is_dir():
        for path in sorted(signing.glob("*.secrets")):
            found.append(KeyFile(path, f"signing secrets of {path.stem}", _mode(path)))
    return found


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
