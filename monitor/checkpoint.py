"""The engine checkpoint: state, last stream id and acknowledgements in one transaction.

The monitor's exactly-once story rests on one ``MULTI``: the engine's whole
state (detector windows, reorder buffer, lifecycle), the last processed stream
id, the ids of entries still failing, the engine status, the changed board rows
and the ``XACK`` of every entry folded into that state are written together.
Either all of it lands or none does, so a restarted monitor starts from a state
that has seen exactly the acknowledged entries, and re-reads the others.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from core import keys
from monitor.changes import add_change

logger = logging.getLogger(__name__)

COMPRESS_ABOVE: Final = 64 * 1024
_ZLIB: Final = b"z"
_PLAIN: Final = b"m"


@dataclass(slots=True)
class Checkpoint:
    """What a monitor resumes from."""

    engine: dict[str, Any] | None = None
    last_id: str = "0-0"
    failed: dict[str, int] = field(default_factory=dict)
    """Entry id -> failed attempts, for entries left pending to be retried."""
    counters: dict[str, int] = field(default_factory=dict)
    """``batches``, ``dead_letters``: service counters that survive a restart."""


def encode(checkpoint: Checkpoint) -> bytes:
    body = msgpack.packb(
        {
            "engine": checkpoint.engine,
            "last_id": checkpoint.last_id,
            "failed": checkpoint.failed,
            "counters": checkpoint.counters,
        },
        use_bin_type=True,
    )
    if len(body) > COMPRESS_ABOVE:
        return _ZLIB + zlib.compress(body, 1)
    return _PLAIN + body


def decode(raw: bytes) -> Checkpoint:
    body = zlib.decompress(raw[1:]) if raw[:1] == _ZLIB else raw[1:]
    data = msgpack.unpackb(body, raw=False, strict_map_key=False)
    return Checkpoint(
        data.get("engine"),
        data.get("last_id", "0-0"),
        dict(data.get("failed", {})),
        dict(data.get("counters", {})),
    )


async def load(redis: Any) -> Checkpoint:
    raw = await redis.get(keys.ENGINE_CHECKPOINT)
    if raw is None:
        return Checkpoint()
    return decode(raw)


async def commit(
    redis: Any,
    checkpoint: Checkpoint,
    *,
    status: Mapping[str, Any],
    ack: Sequence[str] = (),
    stream: str = keys.EVENTS,
    group: str = keys.EVENTS_GROUP,
    board: Any = None,
    status_change: bool = False,
    changes_maxlen: int = 100_000,
) -> None:
    """Write state, status, board rows and the acks of ``ack`` in one transaction."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.ENGINE_CHECKPOINT, encode(checkpoint))
        pipe.hset(keys.ENGINE_STATUS, mapping={k: _plain(v) for k, v in status.items()})
        if board is not None:
            board.flush(pipe, changes_maxlen)
        if status_change:
            add_change(pipe, "engine", "status", dict(status), changes_maxlen)
        if ack:
            pipe.xack(stream, group, *ack)
        await pipe.execute()


def compare_ids(a: str, b: str) -> int:
    """-1, 0 or 1 as stream id ``a`` is before, equal to or after ``b``."""
    ta = tuple(int(p) for p in a.split("-", 1))
    tb = tuple(int(p) for p in b.split("-", 1))
    return (ta > tb) - (ta < tb)


def _plain(value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return "" if value is None else str(value)
