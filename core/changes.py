"""The changes stream: every incident, run, queue-board and health change, in order.

Writers append ``{"kind", "op", "data"}`` entries (msgpack) to ``wf:changes``;
the API's ``/v1/live`` WebSocket reads them and forwards them to consoles. The
stream entry id is the change's sequence number, so a reconnecting client can
resume after the last id it saw.
"""

from __future__ import annotations

from typing import Any

import msgpack
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from watchfloor.core import keys

CHANGES_MAXLEN = 100_000


def change_fields(kind: str, op: str, data: Any) -> dict[FieldT, EncodableT]:
    """Fields of one changes-stream entry."""
    return {"c": msgpack.packb({"kind": kind, "op": op, "data": data}, use_bin_type=True)}


def add_change(pipe: Pipeline, kind: str, op: str, data: Any, maxlen: int = CHANGES_MAXLEN) -> None:
    """Queue an ``XADD`` of a change on ``pipe`` (inside the writer's transaction)."""
    pipe.xadd(keys.CHANGES, change_fields(kind, op, data), maxlen=maxlen, approximate=True)


def decode_change(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """Inverse of :func:`change_fields`."""
    return msgpack.unpackb(fields[b"c"], raw=False)
