"""Runs and their effects in Redis: msgpack maps, decoded straight into their structs."""

from __future__ import annotations

from typing import Any

import msgspec


def encode(value: msgspec.Struct) -> bytes:
    return msgspec.msgpack.encode(value)


def decode(raw: bytes | str, kind: Any) -> Any:
    """``raw`` (as stored, also by the dict-based runner) as a ``kind`` struct."""
    if not isinstance(raw, bytes):
        raise TypeError("stored runs and effects are msgpack bytes (a client decoding responses?)")
    return msgspec.msgpack.decode(raw, type=kind)
