"""Sealing the engine's snapshot: the state that holds decrypted text, encrypted at rest.

The detectors work on decrypted events, so their windows, the engine's reorder
buffer and the lifecycle's evidence may hold clear customer data (messages,
access resources, authors). Rather than re-encrypt field by field (and miss
the next field a detector keeps), the service seals the whole snapshot before
it goes into the checkpoint: msgpack, zlib when large (before encryption,
where it still helps), then AES-256-GCM with the field keyring
(:meth:`security.crypto.FieldCipher.seal`), bound to the checkpoint's key so a
sealed blob cannot be passed off as another record. Without a field keyring
nothing was encrypted by the collector either, and the snapshot stays plain.
"""

from __future__ import annotations

import zlib
from typing import Any, Final, Protocol

import msgpack

from watchfloor.core import keys

SEALED: Final = "sealed"


def aad(shard: int) -> bytes:
    """What a sealed snapshot is bound to: its shard's checkpoint key (one shard's state
    cannot be passed off as another's)."""
    return f"{keys.engine_checkpoint(shard)}|engine".encode()


COMPRESS_ABOVE: Final = 16 * 1024
_ZLIB: Final = b"z"
_PLAIN: Final = b"m"


class SealError(Exception):
    """A sealed snapshot cannot be opened here (no keyring, or the wrong one)."""


class Sealer(Protocol):
    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unseal(self, sealed: bytes, aad: bytes) -> bytes: ...


def seal_snapshot(
    snapshot: dict[str, Any], cipher: Sealer | None, shard: int = 0
) -> dict[str, Any]:
    """``{"sealed": <bytes>}`` for the checkpoint; the snapshot itself without a cipher."""
    if cipher is None:
        return snapshot
    body = msgpack.packb(snapshot, use_bin_type=True)
    framed = _ZLIB + zlib.compress(body, 1) if len(body) > COMPRESS_ABOVE else _PLAIN + body
    return {SEALED: cipher.seal(framed, aad(shard))}


def open_snapshot(saved: dict[str, Any], cipher: Sealer | None, shard: int = 0) -> dict[str, Any]:
    """The engine snapshot of a checkpoint, sealed or (written before sealing) plain."""
    sealed = saved.get(SEALED)
    if not isinstance(sealed, bytes):
        return saved
    if cipher is None:
        raise SealError("the engine checkpoint is sealed but this monitor has no field keyring")
    framed = cipher.unseal(sealed, aad(shard))
    body = zlib.decompress(framed[1:]) if framed[:1] == _ZLIB else framed[1:]
    snapshot = msgpack.unpackb(body, raw=False, strict_map_key=False)
    if not isinstance(snapshot, dict):
        raise SealError("the sealed engine checkpoint does not hold a snapshot")
    return snapshot
