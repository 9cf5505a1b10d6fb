"""Events shards: which shard an event goes to, and the shard count a Redis holds.

An event goes to the shard of its **subject**, the name its detectors keep their
windows under (a queue, a component, a topic, an agent, an actor; a heartbeat's
source), so each window lives in one shard and so on one monitor worker. The
hash is CRC-32 of the subject, the same in every process and every version.

The shard count is fixed for the life of the data: the first process writes it
to ``keys.SHARDS``; a process configured with another count refuses to start,
naming both (events already written would be read by the wrong worker after a
silent re-shard).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any, Final

from watchfloor.core import keys
from watchfloor.core.events import Event

MAX_SHARDS: Final = 1024
"""More shards than workers will ever run is pointless; each costs a stream and a lease."""

SUBJECT_FIELDS: Final = ("queue", "component", "topic", "agent_id", "actor", "account")
"""Fields naming an event's subject, by event type; an event with none uses its source.
An ``order.change`` goes by its agent, or by its account when no agent made it."""


class ShardError(Exception):
    """The shard configuration is unusable; the message says what to change."""


def subject_of(event: Event) -> str:
    """The name the detectors judge ``event`` under (its partition key)."""
    for name in SUBJECT_FIELDS:
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    return event.source


def shard_of(subject: str, shards: int) -> int:
    """Shard ``0 <= n < shards`` of ``subject``."""
    return zlib.crc32(subject.encode("utf-8", "surrogatepass")) % shards


def split(events: Sequence[Event], shards: int) -> dict[int, list[int]]:
    """Shard -> indexes of ``events`` (in order) going to it."""
    parts: dict[int, list[int]] = {}
    for index, event in enumerate(events):
        parts.setdefault(shard_of(subject_of(event), shards), []).append(index)
    return parts


def all_shards(shards: int) -> range:
    return range(shards)


def stream_names(shards: int) -> list[str]:
    """Every shard's events stream."""
    return [keys.events_shard(n) for n in range(shards)]


def check_count(shards: int) -> int:
    if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= MAX_SHARDS:
        raise ShardError(f"redis.shards must be an integer from 1 to {MAX_SHARDS}, got {shards!r}")
    return shards


async def ensure_count(redis: Any, shards: int) -> int:
    """Record ``shards`` as this Redis's shard count, or check it against the recorded one."""
    check_count(shards)
    await redis.set(keys.SHARDS, shards, nx=True)
    recorded = await redis.get(keys.SHARDS)
    return _compare(recorded, shards)


def ensure_count_sync(redis: Any, shards: int) -> int:
    """:func:`ensure_count` for a blocking client (start-up checks)."""
    check_count(shards)
    redis.set(keys.SHARDS, shards, nx=True)
    return _compare(redis.get(keys.SHARDS), shards)


def _compare(recorded: Any, shards: int) -> int:
    try:
        have = int(recorded)
    except (TypeError, ValueError):
        raise ShardError(f"{keys.SHARDS} holds {recorded!r}, not a shard count") from None
    if have != shards:
        raise ShardError(
            f"this Redis was set up with {have} events shards but the configuration says "
            f"{shards} (redis.shards): set redis.shards = {have}; the events already written "
            "are sharded by that count, and re-sharding is not done silently"
        )
    return have


def spread(items: Iterable[int], shards: int) -> list[int]:
    """``items`` deduplicated and checked to name shards of ``shards``."""
    out = sorted(set(items))
    bad = [n for n in out if not 0 <= n < shards]
    if bad:
        raise ShardError(f"no shard {bad[0]}: shards are 0 to {shards - 1}")
    return out
