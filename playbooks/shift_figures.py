"""Contact-centre figures of one shift, summed from the events it received.

The queue board keeps rolling five-minute windows, so its rates say nothing
about a whole shift, and the worst value seen overstates it. Here every
``queue.stats`` and ``contact`` event of the shift is read back from the
events stream and its counts are summed per queue: service level is
``sum answered_in_sla / sum answered`` (contacts answered within the channel's
threshold), abandon rate ``sum abandoned / sum offered``, satisfaction the
share of CSAT ratings of 4 or 5 (and their mean), resolution
``completed / answered`` contacts. A figure whose counts are absent stays
``None`` (shown as "-"), never 0.

The events are sharded (``wf:events:{N}``, by subject): every shard's stream
is read over the shift and the shards' entries merged in stream-id (arrival
time) order. ``partial`` says the oldest entry of all the shards is younger
than the shift (trimmed, or the data starts later).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Final, cast

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.config import RedisConfig
from watchfloor.core.engine_status import shard_count
from watchfloor.core.events import Contact, Event, QueueStats, decode_batch
from watchfloor.core.vocabulary import SLA_ANSWER_S

PAGE: Final = 500
BATCH_FIELD: Final = b"b"

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(slots=True)
class QueueCounts:
    channel: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_sla: int = 0
    sla_known: int = 0
    """Answered contacts whose wait is known (the service level's denominator)."""
    completed: int = 0
    csat: list[int] = field(default_factory=list)

    def add_stats(self, event: QueueStats) -> None:
        if event.offered is None:
            return
        self.offered += event.offered
        self.answered += event.answered or 0
        self.abandoned += event.abandoned or 0
        if event.answered_in_sla is not None:
            self.answered_in_sla += event.answered_in_sla
            self.sla_known += event.answered or 0

    def add_contact(self, event: Contact) -> None:
        if event.action == "offered":
            self.offered += 1
        elif event.action == "abandoned":
            self.abandoned += 1
        elif event.action == "answered":
            self.answered += 1
            if event.wait_s is not None:
                self.sla_known += 1
                self.answered_in_sla += event.wait_s <= SLA_ANSWER_S.get(event.channel, 0.0)
        elif event.action == "completed":
            self.completed += 1
        if event.csat is not None:
            self.csat.append(event.csat)

    def figures(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "answered_in_sla": self.answered_in_sla,
            "service_level": _ratio(self.answered_in_sla, self.sla_known),
            "abandon_rate": _ratio(self.abandoned, self.offered),
            "satisfaction": _ratio(sum(1 for c in self.csat if c >= 4), len(self.csat)),
            "csat_mean": _ratio(sum(self.csat), len(self.csat)),
            "csat_count": len(self.csat),
            "resolution_rate": _ratio(self.completed, self.answered) if self.completed else None,
        }


def _ratio(part: float, whole: float) -> float | None:
    return None if not whole else round(part / whole, 4)


async def shift_figures(
    redis: aioredis.Redis, since: float, now: float, shards: int | None = None
) -> dict[str, Any]:
    """Per queue and in total, the shift's figures from its counts (see the module doc).

    ``shards``: the events shard count (default: the one this Redis was set up with, or
    the configuration's default where none is recorded yet).
    """
    if shards is None:
        shards = await shard_count(redis) or RedisConfig().shards
    counts: dict[str, QueueCounts] = {}
    total = QueueCounts(channel="*")
    for event in await _events_between(redis, shards, since, now):
        if isinstance(event, QueueStats | Contact) and since <= event.ts <= now:
            queue = counts.setdefault(event.queue, QueueCounts(channel=event.channel))
            for target in (queue, total):
                if isinstance(event, QueueStats):
                    target.add_stats(event)
                else:
                    target.add_contact(event)
    firsts = []
    for n in range(shards):
        first = cast(list[Entry], await redis.xrange(keys.events_shard(n), count=1))
        firsts += [_ms(first[0][0])] if first else []
    partial = bool(firsts) and min(firsts) > since * 1000
    return {
        "queues": {name: counts[name].figures() for name in sorted(counts)},
        "total": total.figures(),
        "partial": partial,
    }


async def _events_between(
    redis: aioredis.Redis, shards: int, since: float, now: float
) -> list[Event]:
    """Events of the entries written in ``[since, now]`` (arrival time, ms ids) to any
    shard, the shards merged in stream-id order."""
    parts = [await _entries_between(redis, keys.events_shard(n), since, now) for n in range(shards)]
    found: list[Event] = []
    for _, fields in heapq.merge(*parts, key=lambda entry: _sid(entry[0])):
        if BATCH_FIELD in fields:
            found.extend(decode_batch(fields[BATCH_FIELD]))
    return found


async def _entries_between(
    redis: aioredis.Redis, stream: str, since: float, now: float
) -> list[Entry]:
    entries: list[Entry] = []
    start, end = f"{int(since * 1000)}-0", f"{int(now * 1000)}-9999999"
    while True:
        reply = cast(list[Entry], await redis.xrange(stream, min=start, max=end, count=PAGE))
        entries += reply
        if len(reply) < PAGE:
            return entries
        last = reply[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _sid(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _ms(entry_id: bytes | str) -> int:
    return _sid(entry_id)[0]
