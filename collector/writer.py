"""Where accepted batches go: the events shards when Redis answers, else the spool.

:meth:`BatchWriter.put` returns only once the batch is in Redis or fsynced in
the spool, which is what lets the HTTP handler answer 202. Order is kept:
while the spool holds anything, new batches are appended behind it instead of
overtaking it, and :meth:`BatchWriter.run` replays the spool in order as soon
as Redis answers again (also the spool left by a previous process).

Both paths write through :meth:`collector.dedup.Deduplicator.write`, which
splits the batch by shard and checks and records each part's ids in the same
atomic script as its ``XADD``. A batch is spooled whole (also when some of its
shard parts were written before Redis failed), and a spooled batch is always
checked on replay, part by part: a part whose write happened before the crash
(or the lost answer) has its ids recorded and is not stored twice; a part
that was not written has nothing recorded and is stored. Records replay in
spool order, so each shard's stream keeps the order of acceptance. The spool
offset is committed only after the write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from watchfloor.collector import faults
from watchfloor.collector.dedup import Deduplicator
from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.spool import Spool, SpoolRecord
from watchfloor.core import keys
from watchfloor.core.bus import TRANSIENT_ERRORS, BusUnavailable
from watchfloor.core.events import Event, decode_batch, encode_batch

logger = logging.getLogger(__name__)

REDIS_DOWN = (*TRANSIENT_ERRORS, BusUnavailable, RedisError)
REPLAY_CHUNK = 64


@dataclass(slots=True)
class Kept:
    """Where one batch went and what of it was kept."""

    where: Literal["redis", "spool"]
    events: list[Event]
    duplicates: dict[str, int] = field(default_factory=dict)


class BatchWriter:
    """Writes batches to the events shards, spooling while Redis is away."""

    def __init__(
        self,
        dedup: Deduplicator,
        spool: Spool,
        metrics: CollectorMetrics,
        *,
        retry_interval_s: float = 0.5,
    ) -> None:
        self.dedup = dedup
        self.spool = spool
        self.metrics = metrics
        self.retry_interval_s = retry_interval_s
        self.redis_up = True
        self.changed = asyncio.Event()
        """Set whenever the spool or Redis state changes (the clock publisher listens)."""
        self._wake = asyncio.Event()
        metrics.gauges["spool_bytes"] = lambda: float(spool.depth_bytes)
        metrics.gauges["spool_batches"] = lambda: float(spool.depth_batches)
        metrics.gauges["redis_up"] = lambda: 1.0 if self.redis_up else 0.0

    @property
    def redis(self) -> Redis:
        return self.dedup.redis

    @property
    def direct(self) -> bool:
        """True when a new batch may go straight to Redis (nothing spooled before it)."""
        return self.redis_up and not self.spool.pending

    async def put(self, events: Sequence[Event], arrived: float | None = None) -> Kept:
        """Keep one batch (received at ``arrived``) in Redis or the spool.

        Raises :class:`SpoolFull`.
        """
        if self.direct:
            started = time.perf_counter()
            try:
                written = await self.dedup.write(events)
            except REDIS_DOWN as exc:
                self._mark_down(exc)
            else:
                self.metrics.redis_latency.observe(time.perf_counter() - started)
                return Kept("redis", written.kept, written.duplicates)
        await self.spool.append(encode_batch(list(events)), deduped=False, accepted_at=arrived)
        faults.reach("spool.appended")
        self.metrics.spooled_batches += 1
        self._wake.set()
        self.changed.set()
        return Kept("spool", list(events))

    def _mark_down(self, exc: BaseException) -> None:
        if self.redis_up:
            logger.warning("redis unreachable, spooling batches error=%s", exc)
        self.redis_up = False
        self._wake.set()
        self.changed.set()

    def _mark_up(self, why: str) -> None:
        if not self.redis_up:
            logger.warning("redis reachable again, %s", why)
        self.redis_up = True
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Replay the spool whenever it holds batches and Redis answers."""
        while not stop.is_set():
            if not self.spool.pending:
                if not self.redis_up and await self._ping():
                    self._mark_up("writing to redis directly")
                await wait_first(self._wake, stop, timeout=5.0 if self.redis_up else 1.0)
                self._wake.clear()
                continue
            try:
                await self._drain(stop)
            except REDIS_DOWN as exc:
                self._mark_down(exc)
                await wait_first(stop, None, timeout=self.retry_interval_s)
            except Exception:  # a task boundary: log, wait, try again
                logger.exception("spool replay failed; retrying")
                await wait_first(stop, None, timeout=self.retry_interval_s * 4)

    async def _drain(self, stop: asyncio.Event) -> None:
        await self.redis.ping()
        while not stop.is_set():
            records = await self.spool.read(REPLAY_CHUNK)
            if not records:
                if await self.spool.reset_if_drained():
                    faults.reach("replay.truncated")
                    self._mark_up("spool replayed, writing to redis directly again")
                    return
                continue
            faults.reach("replay.read")
            for record in records:
                await self._replay(record)
            faults.reach("replay.written")
            await self.spool.commit(records[-1].end, len(records))
            faults.reach("replay.committed")
            self.metrics.replayed_batches += len(records)
            self.changed.set()

    async def _replay(self, record: SpoolRecord) -> None:
        try:
            events = decode_batch(record.payload)
        except ValueError:  # not a batch we wrote: keep it in shard 0, never lose it
            logger.error("spooled batch not decodable, replayed as is to shard 0 bytes=%d",
                         len(record.payload))  # fmt: skip
            await self.redis.xadd(keys.events_shard(0), {b"b": record.payload})
            return
        if not events:
            return
        started = time.perf_counter()
        written = await self.dedup.write(events)
        self.metrics.redis_latency.observe(time.perf_counter() - started)
        for source, n in written.duplicates.items():
            self.metrics.duplicates[source] += n

    async def _ping(self) -> bool:
        try:
            await self.redis.ping()
        except REDIS_DOWN:
            return False
        return True


async def wait_first(event: asyncio.Event, stop: asyncio.Event | None, *, timeout: float) -> None:
    waiters = [asyncio.ensure_future(event.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
