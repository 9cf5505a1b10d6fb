"""Keeps the events shards inside the operator's budget, never past what consumers acked.

One stream entry is one batch of 1 to 10 000 events, so a cap in entries
(``MAXLEN``) says nothing about memory: 200 000 batches of 1 000 events are
about 40 GB. The budget is set in bytes (``redis.events_max_bytes``) and in
hours (``redis.events_retention_h``); every ``interval_s`` the trimmer
estimates the stream's size (``MEMORY USAGE`` with a few samples; where
``MEMORY`` is not allowed, its length times the size of its recent entries),
turns each budget into a ``MINID`` (stream ids are millisecond
times, so "24 hours" is an id; "keep N bytes" is the id that many average
entries from the end, interpolated between the first and last ids, which
converges over successive runs) and trims below the later of the two. It
never trims an entry that a consumer group has not acknowledged: the ``MINID``
is capped at the oldest pending entry of every group, or the entry after the
last one delivered to it. Without any group nothing is trimmed (no reader
has ever seen those events); an over-budget stream held back by a slow
consumer is logged once and shown in ``/metrics``.

The events are sharded (``wf:events:{N}``): :class:`EventsTrimmer` runs one
:class:`StreamTrimmer` per shard stream, each with an equal share of the byte
budget (subjects hash evenly over the shards; a shard holding one very busy
subject keeps a shorter history than the others) and the whole age budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.writer import REDIS_DOWN, wait_first
from watchfloor.core import keys

logger = logging.getLogger(__name__)

StreamId = tuple[int, int]
SAMPLE = 8
"""Recent entries whose sizes estimate the bytes per entry."""
ENTRY_OVERHEAD = 64
"""Bytes Redis spends per stream entry beyond its payload (id, field name, listpack)."""


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


@dataclass(frozen=True, slots=True)
class TrimPlan:
    """What one run decided (for tests, logs and metrics)."""

    length: int
    est_bytes: int
    wanted: StreamId | None
    """MINID the budgets ask for (None: within both budgets)."""
    floor: StreamId | None
    """The highest MINID no consumer group objects to (None: no group)."""
    trimmed: int = 0

    @property
    def held_back(self) -> bool:
        return self.wanted is not None and (self.floor is None or self.floor < self.wanted)


class StreamTrimmer:
    """Trims one stream by MINID within a byte and an age budget."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_bytes: int,
        retention_h: float,
        stream: str,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.redis = redis
        self.max_bytes = max_bytes
        self.retention_h = retention_h
        self.stream = stream
        self.metrics = metrics
        self._held = False
        self.est_bytes = 0

    async def trim_once(self, now: float | None = None) -> TrimPlan:
        now = time.time() if now is None else now
        try:
            info: Any = await self.redis.xinfo_stream(self.stream)
        except ResponseError:  # no such key: nothing to trim
            return TrimPlan(0, 0, None, None)
        length = int(info["length"])
        if length == 0:
            return TrimPlan(0, 0, None, None)
        first, last = parse_id(info["first-entry"][0]), parse_id(info["last-entry"][0])
        self.est_bytes = await self._estimate_bytes(length)
        wanted = self._wanted(now, length, first, last)
        floor = await self._floor()
        plan = TrimPlan(length, self.est_bytes, wanted, floor)
        self._report_held(plan)
        if wanted is None or floor is None:
            return plan
        minid = min(wanted, floor)
        if minid <= first:
            return plan
        # An exact MINID: "~" removes whole radix nodes only (100 entries by default), so
        # a small or slow stream would never shrink; one exact cut per interval is cheap.
        trimmed = int(
            await self.redis.xtrim(self.stream, minid=format_id(minid), approximate=False)
        )
        if self.metrics is not None:
            self.metrics.trimmed_entries += trimmed
        return TrimPlan(length, self.est_bytes, wanted, floor, trimmed)

    def _wanted(self, now: float, length: int, first: StreamId, last: StreamId) -> StreamId | None:
        cuts: list[StreamId] = []
        if self.retention_h > 0:
            cut = (int((now - self.retention_h * 3600) * 1000), 0)
            if cut > first:
                cuts.append(cut)
        if self.max_bytes > 0 and self.est_bytes > self.max_bytes:
            per_entry = max(1, self.est_bytes // length)
            drop = length - self.max_bytes // per_entry
            # Ids are times: assume entries spread evenly between the first and the last.
            ms = first[0] + (last[0] - first[0]) * drop // length
            cuts.append(max((ms, 0), (first[0], first[1] + 1)))
        return max(cuts) if cuts else None

    async def _estimate_bytes(self, length: int) -> int:
        # Redis's own estimate samples a few radix-tree nodes: cheap and close. Managed
        # Redis may forbid MEMORY; then the sizes of the most recent entries stand in.
        try:
            usage = await self.redis.memory_usage(self.stream, samples=8)
        except ResponseError:
            usage = None
        return int(usage) if usage else length * await self._bytes_per_entry()

    async def _bytes_per_entry(self) -> int:
        recent: Any = await self.redis.xrevrange(self.stream, count=SAMPLE)
        sizes = [sum(len(k) + len(v) for k, v in fields.items()) for _id, fields in recent]
        return ENTRY_OVERHEAD + (sum(sizes) // len(sizes) if sizes else 0)

    async def _floor(self) -> StreamId | None:
        """The highest MINID that removes only entries every group has acknowledged."""
        groups: Any = await self.redis.xinfo_groups(self.stream)
        if not groups:
            return None
        floors = []
        for group in groups:
            if int(group["pending"]) > 0:
                summary: Any = await self.redis.xpending(self.stream, group["name"])
                floors.append(parse_id(summary["min"]))
            else:
                ms, seq = parse_id(group["last-delivered-id"])
                floors.append((ms, seq + 1))
        return min(floors)

    def _report_held(self, plan: TrimPlan) -> None:
        if plan.held_back and not self._held:
            logger.warning(
                "events stream over its budget but not trimmed: a consumer has not acknowledged "
                "the entries stream=%s est_bytes=%d length=%d wanted=%s floor=%s",
                self.stream, plan.est_bytes, plan.length, plan.wanted, plan.floor,
            )  # fmt: skip
        elif self._held and not plan.held_back:
            logger.warning("events stream back within its budget stream=%s", self.stream)
        self._held = plan.held_back


class EventsTrimmer:
    """Trims every events shard's stream within its share of the budgets."""

    def __init__(
        self,
        redis: Redis,
        *,
        shards: int,
        max_bytes: int,
        retention_h: float,
        interval_s: float = 10.0,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        share = max(1, max_bytes // shards) if max_bytes > 0 else 0
        self.interval_s = interval_s
        self.shards = [
            StreamTrimmer(
                redis,
                max_bytes=share,
                retention_h=retention_h,
                stream=keys.events_shard(n),
                metrics=metrics,
            )
            for n in range(shards)
        ]
        if metrics is not None:
            metrics.gauges["events_stream_bytes_estimate"] = lambda: float(self.est_bytes)

    @property
    def est_bytes(self) -> int:
        """The estimated size of all the shards' streams (as of their last runs)."""
        return sum(shard.est_bytes for shard in self.shards)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.trim_once()
            await wait_first(stop, None, timeout=self.interval_s)

    async def trim_once(self, now: float | None = None) -> list[TrimPlan | None]:
        """One run over every shard: its plan, ``None`` where Redis failed."""
        plans: list[TrimPlan | None] = []
        for shard in self.shards:
            try:
                plans.append(await shard.trim_once(now))
            except REDIS_DOWN:
                plans.append(None)  # the writer logs outages; the next run trims
            except Exception:  # a task boundary: log, keep the service running
                logger.exception("events stream trim failed stream=%s", shard.stream)
                plans.append(None)
        return plans
