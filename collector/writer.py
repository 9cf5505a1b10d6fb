"""Where accepted batches go: Redis when it answers, else the spool, replayed later.

:meth:`BatchWriter.put` returns only once the batch is in Redis or fsynced in
the spool, which is what lets the HTTP handler answer 202. Order is kept:
while the spool holds anything, new batches are appended behind it instead of
overtaking it, and :meth:`BatchWriter.run` replays the spool in order as soon
as Redis answers again (also the spool left by a previous process). Batches
spooled before duplicate suppression could run (Redis was already down) go
through it on replay.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from collector.dedup import Deduplicator
from collector.metrics import CollectorMetrics
from collector.spool import Spool, SpoolRecord
from core.bus import TRANSIENT_ERRORS, BusUnavailable, EventProducer
from core.events import decode_batch, encode_batch

logger = logging.getLogger(__name__)

REDIS_DOWN = (*TRANSIENT_ERRORS, BusUnavailable, RedisError)
REPLAY_CHUNK = 64


class BatchWriter:
    """Writes encoded batches to the events stream, spooling while Redis is away."""

    def __init__(
        self,
        producer: EventProducer,
        spool: Spool,
        metrics: CollectorMetrics,
        dedup: Deduplicator | None = None,
        *,
        retry_interval_s: float = 0.5,
    ) -> None:
        self.producer = producer
        self.spool = spool
        self.metrics = metrics
        self.dedup = dedup
        self.retry_interval_s = retry_interval_s
        self.redis_up = True
        self._wake = asyncio.Event()
        metrics.gauges["spool_bytes"] = lambda: float(spool.depth_bytes)
        metrics.gauges["spool_batches"] = lambda: float(spool.depth_batches)
        metrics.gauges["redis_up"] = lambda: 1.0 if self.redis_up else 0.0

    @property
    def redis(self) -> Redis:
        return self.producer.redis

    @property
    def direct(self) -> bool:
        """True when a new batch may go straight to Redis (nothing spooled before it)."""
        return self.redis_up and not self.spool.pending

    async def put(self, payload: bytes, *, deduped: bool) -> str:
        """Keep one batch; return ``"redis"`` or ``"spool"``. Raises :class:`SpoolFull`."""
        if self.direct:
            started = time.perf_counter()
            try:
                await self.producer.publish([payload])
            except REDIS_DOWN as exc:
                self._mark_down(exc)
            else:
                self.metrics.redis_latency.observe(time.perf_counter() - started)
                return "redis"
        await self.spool.append(payload, deduped=deduped)
        self.metrics.spooled_batches += 1
        self._wake.set()
        return "spool"

    def _mark_down(self, exc: BaseException) -> None:
        if self.redis_up:
            logger.warning("redis unreachable, spooling batches error=%s", exc)
        self.redis_up = False
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Replay the spool whenever it holds batches and Redis answers."""
        while not stop.is_set():
            if not self.spool.pending:
                self.redis_up = self.redis_up or await self._ping()
                await _wait(self._wake, stop, timeout=5.0)
                self._wake.clear()
                continue
            try:
                await self._drain(stop)
            except REDIS_DOWN as exc:
                self._mark_down(exc)
                await _wait(stop, None, timeout=self.retry_interval_s)
            except Exception:  # a task boundary: log, wait, try again
                logger.exception("spool replay failed; retrying")
                await _wait(stop, None, timeout=self.retry_interval_s * 4)

    async def _drain(self, stop: asyncio.Event) -> None:
        await self.redis.ping()
        while not stop.is_set():
            records = await self.spool.read(REPLAY_CHUNK)
            if not records:
                if await self.spool.reset_if_drained():
                    self.redis_up = True
                    logger.warning("spool replayed, writing to redis directly again")
                    return
                continue
            payloads = [p for p in await self._dedup_all(records) if p]
            if payloads:
                started = time.perf_counter()
                await self.producer.publish(payloads)
                self.metrics.redis_latency.observe(time.perf_counter() - started)
            await self.spool.commit(records[-1].end, len(records))
            self.metrics.replayed_batches += len(records)

    async def _dedup_all(self, records: list[SpoolRecord]) -> list[bytes]:
        out = []
        for record in records:
            if record.deduped or self.dedup is None:
                out.append(record.payload)
                continue
            try:
                events = decode_batch(record.payload)
            except ValueError:  # written by an older version? keep it; the monitor decides
                logger.error("spooled batch not decodable, replayed as is bytes=%d",
                             len(record.payload))  # fmt: skip
                out.append(record.payload)
                continue
            fresh, dups = await self.dedup.filter(events)
            for source, n in dups.items():
                self.metrics.duplicates[source] += n
            out.append(encode_batch(fresh) if fresh else b"")
        return out

    async def _ping(self) -> bool:
        try:
            await self.redis.ping()
        except REDIS_DOWN:
            return False
        return True


async def _wait(event: asyncio.Event, stop: asyncio.Event | None, *, timeout: float) -> None:
    waiters = [asyncio.ensure_future(event.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
