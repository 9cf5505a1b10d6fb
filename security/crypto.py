"""Field encryption at rest: AES-256-GCM with a keyring, bound to record and field.

The collector encrypts the sensitive fields of each event
(``core.events.SENSITIVE_FIELDS``: ``agent.message.text``,
``social.mention.author`` and ``.text``, ``data.access.resource``) before they
reach Redis. A value becomes

    ``wfenc1:<key id>:<base64(nonce 12 bytes | ciphertext | tag 16 bytes)>``

with a fresh random 96-bit nonce each time. The associated data binds the
ciphertext to its key id and to the caller's context (for events:
``type|source|id|repr(ts)|field``), so a value copied into another record or
field, or relabelled with another key id, fails to decrypt. Whole blobs (the
engine's checkpoint, which holds decrypted text) are sealed the same way in
binary: ``wfseal1:<key id>:<nonce | ciphertext | tag>`` (:meth:`FieldCipher.seal`).

The keyring ``DATA_DIR/keys/field-keys.json`` (0600) lists key ids and base64
keys; the newest encrypts, all decrypt. :meth:`FieldCipher.rotate` adds a key;
a running process that meets an unknown key id reloads the keyring once, so a
monitor started before the rotation still reads what a restarted collector
writes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Final, TypeGuard, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchfloor.core.events import SENSITIVE_FIELDS, Event
from watchfloor.security import keys as keyfiles

logger = logging.getLogger(__name__)

PREFIX: Final = "wfenc1:"
SEAL_PREFIX: Final = b"wfseal1:"
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
KEYRING_VERSION: Final = 1
E = TypeVar("E", bound=Event)


class CryptoError(Exception):
    """Base error of field encryption."""


class KeyringError(CryptoError):
    """The keyring is missing, unreadable or malformed."""


class DecryptError(CryptoError):
    """A value could not be decrypted (altered, moved, or unknown key)."""


def is_encrypted(value: object) -> TypeGuard[str]:
    """True for a string in the ``wfenc1:`` format."""
    return isinstance(value, str) and value.startswith(PREFIX)


# Keyring file ---------------------------------------------------------------------------


def _new_key_entry() -> dict[str, Any]:
    return {
        "id": secrets.token_hex(4),
        "key": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode(),
        "created": time.time(),
    }


def read_keyring(data_dir: str | Path) -> dict[str, Any]:
    path = keyfiles.field_keyring_path(data_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyringError(f"no field keyring at {path}: run 'watchfloor keys init'") from None
    except (OSError, ValueError) as exc:
        raise KeyringError(f"cannot read the field keyring {path}: {exc}") from None
    if path.stat().st_mode & 0o077:
        logger.warning("field keyring is readable by others path=%s", path)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise KeyringError(f"{path} is not a field keyring (no keys)")
    return data


def _write_keyring(data_dir: str | Path, data: dict[str, Any]) -> None:
    keyfiles.ensure_keys_dir(data_dir)
    text = json.dumps(data, indent=2) + "\n"
    keyfiles.write_private(keyfiles.field_keyring_path(data_dir), text.encode())


def create_keyring(data_dir: str | Path) -> str:
    """Write a keyring with one new key (refuses to replace one); return its key id."""
    if keyfiles.field_keyring_path(data_dir).exists():
        raise KeyringError("a field keyring already exists: use 'watchfloor keys rotate'")
    entry = _new_key_entry()
    _write_keyring(data_dir, {"version": KEYRING_VERSION, "current": entry["id"],
                              "keys": [entry]})  # fmt: skip
    logger.info("field keyring created key_id=%s", entry["id"])
    return str(entry["id"])


def list_field_keys(data_dir: str | Path) -> list[dict[str, Any]]:
    """Key ids, creation times and which one encrypts (never the keys themselves)."""
    data = read_keyring(data_dir)
    return [
        {"id": k["id"], "created": k.get("created"), "current": k["id"] == data["current"]}
        for k in data["keys"]
    ]


# The cipher -----------------------------------------------------------------------------


class FieldCipher:
    """Encrypts with the newest key of the keyring, decrypts with any of them."""

    def __init__(self, keyring: dict[str, Any], data_dir: str | Path | None = None) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._install(keyring)

    def _install(self, keyring: dict[str, Any]) -> None:
        aeads: dict[str, AESGCM] = {}
        for entry in keyring["keys"]:
            try:
                raw = base64.b64decode(entry["key"], validate=True)
            except (KeyError, TypeError, binascii.Error) as exc:
                raise KeyringError(f"bad key in the field keyring: {exc}") from None
            if len(raw) != KEY_BYTES:
                raise KeyringError(f"key {entry.get('id')!r} is not a 256-bit key")
            aeads[str(entry["id"])] = AESGCM(raw)
        current = str(keyring.get("current", ""))
        if current not in aeads:
            raise KeyringError(f"the current key {current!r} is not in the keyring")
        self._aeads = aeads
        self.key_id = current
        self._current = aeads[current]
        self._prefix = f"{PREFIX}{current}:"
        self._aad_prefix = self._prefix.encode()

    @classmethod
    def load(cls, data_dir: str | Path, create: bool = False) -> FieldCipher:
        """The cipher of ``DATA_DIR/keys/field-keys.json`` (made first when ``create``)."""
        if create and not keyfiles.field_keyring_path(data_dir).exists():
            create_keyring(data_dir)
        return cls(read_keyring(data_dir), data_dir)

    @staticmethod
    def rotate(data_dir: str | Path) -> str:
        """Add a new key that encrypts from now on; old keys still decrypt. Returns its id."""
        data = read_keyring(data_dir)
        entry = _new_key_entry()
        data["keys"].append(entry)
        data["current"] = entry["id"]
        _write_keyring(data_dir, data)
        logger.info("field key rotated key_id=%s keys=%d", entry["id"], len(data["keys"]))
        return str(entry["id"])

    @property
    def key_ids(self) -> list[str]:
        return list(self._aeads)

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        """``wfenc1:<kid>:<b64>`` of ``plaintext``, bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode("utf-8"), self._aad_prefix + aad)
        return self._prefix + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, value: str, aad: bytes) -> str:
        """The plaintext of ``value``; :class:`DecryptError` if altered, moved or unknown."""
        key_id, blob = _split(value)
        aead = self._aeads.get(key_id) or self._reload_for(key_id)
        if len(blob) < NONCE_BYTES + 16:
            raise DecryptError("encrypted value is truncated")
        header = f"{PREFIX}{key_id}:".encode()
        try:
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], header + aad)
        except InvalidTag:
            raise DecryptError(
                "cannot decrypt: the value was altered, or it belongs to another record or field"
            ) from None
        return plain.decode("utf-8")

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """``wfseal1:<kid>:<nonce | ciphertext | tag>`` of ``plaintext``, bound to ``aad``.

        The binary twin of :meth:`encrypt`, for whole blobs (the engine's checkpoint):
        no base64, so a snapshot of hundreds of KiB costs no more than AES-GCM itself.
        """
        nonce = os.urandom(NONCE_BYTES)
        header = SEAL_PREFIX + self.key_id.encode() + b":"
        return header + nonce + self._current.encrypt(nonce, plaintext, header + aad)

    def unseal(self, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of a :meth:`seal` result; :class:`DecryptError` if altered or moved."""
        if not sealed.startswith(SEAL_PREFIX):
            raise DecryptError("not a sealed value (no wfseal1: prefix)")
        key_id, sep, blob = sealed[len(SEAL_PREFIX) :].partition(b":")
        if not sep or not key_id or len(blob) < NONCE_BYTES + 16:
            raise DecryptError("malformed or truncated sealed value")
        kid = key_id.decode("ascii", "replace")
        aead = self._aeads.get(kid) or self._reload_for(kid)
        header = SEAL_PREFIX + key_id + b":"
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], header + aad)
        except InvalidTag:
            raise DecryptError(
                "cannot unseal: the value was altered, or it belongs to another record"
            ) from None

    def _reload_for(self, key_id: str) -> AESGCM:
        """Another process rotated the keyring: read it again, once per unknown id."""
        if self.data_dir is not None:
            with self._lock:
                if key_id not in self._aeads:
                    self._install(read_keyring(self.data_dir))
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptError(f"cannot decrypt: key {key_id!r} is not in the keyring")
        return aead


def _split(value: str) -> tuple[str, bytes]:
    if not is_encrypted(value):
        raise DecryptError("not an encrypted value (no wfenc1: prefix)")
    key_id, sep, body = value[len(PREFIX) :].partition(":")
    if not sep or not key_id:
        raise DecryptError("malformed encrypted value (no key id)")
    try:
        return key_id, binascii.a2b_base64(body, strict_mode=True)
    except (binascii.Error, ValueError):
        raise DecryptError("malformed encrypted value (bad base64)") from None


# Events ---------------------------------------------------------------------------------


def event_aad(event: Event, field: str) -> bytes:
    """``type|source|id|repr(ts)|field``: what binds a value to its event and field."""
    return f"{event.type}|{event.source}|{event.id or ''}|{event.ts!r}|{field}".encode()


def encrypt_event(event: E, cipher: FieldCipher) -> E:
    """A copy of ``event`` with its sensitive fields encrypted (already encrypted: kept)."""
    changes = {}
    for name in SENSITIVE_FIELDS.get(event.type, ()):
        value = getattr(event, name, None)
        if isinstance(value, str) and not is_encrypted(value):
            changes[name] = cipher.encrypt(value, event_aad(event, name))
    return event.replace(**changes) if changes else event


def decrypt_event(event: E, cipher: FieldCipher) -> E:
    """A copy of ``event`` with its encrypted fields in clear (plain ones kept as they are)."""
    changes = {}
    for name in SENSITIVE_FIELDS.get(event.type, ()):
        value = getattr(event, name, None)
        if is_encrypted(value):
            changes[name] = cipher.decrypt(value, event_aad(event, name))
    return event.replace(**changes) if changes else event
