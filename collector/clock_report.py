"""The collector's report to the monitor: until when everything it acknowledged is written.

When the events stream is idle the monitor advances its clock with the wall
clock, so that a lost heartbeat is noticed. It must never advance past events
that a collector answered 202 for but has not written yet (a stall, a Redis
blip, a spool waiting for its replay): those events would then arrive late.
Every second, and after each spool change, the collector writes into the hash
``keys.COLLECTORS`` its field (``host:pid:port``) = msgpack ``{"written_until",
"at"}``: ``at`` is its wall clock now, ``written_until`` the moment before which
every batch it received is in the stream: ``now`` when nothing is in flight or
spooled, else the time the oldest in-flight or spooled batch came in. Records
left in the spool by an earlier process carry no time; their oldest event's
``ts`` minus the clock window's ``max_ahead_s`` is a safe lower bound (the
window admitted no event further ahead of the collector's clock). The field is
removed on a clean stop; the monitor ignores reports that are not fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections.abc import Iterator

import msgpack
from redis.asyncio import Redis

from watchfloor.collector.spool import Spool
from watchfloor.collector.writer import REDIS_DOWN, BatchWriter, wait_first
from watchfloor.core import keys
from watchfloor.core.events import decode_batch

logger = logging.getLogger(__name__)

MIN_GAP_S = 0.1
"""Reports triggered by spool changes are at least this far apart."""


def collector_id(port: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{port}"


class InFlight:
    """Batches received and not yet kept (in the stream or fsynced in the spool)."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}
        self._keys = itertools.count()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[float]:
        """Track one batch from now until the block ends; yields its arrival time."""
        key, now = next(self._keys), time.time()
        self._since[key] = now
        try:
            yield now
        finally:
            del self._since[key]

    def oldest(self) -> float | None:
        return min(self._since.values(), default=None)


class ClockReporter:
    """Publishes the collector's ``written_until`` into ``keys.COLLECTORS``."""

    def __init__(
        self,
        redis: Redis,
        writer: BatchWriter,
        in_flight: InFlight,
        ident: str,
        *,
        max_ahead_s: float,
        interval_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.writer = writer
        self.in_flight = in_flight
        self.ident = ident
        self.max_ahead_s = max_ahead_s
        self.interval_s = interval_s
        self._recovered_at = 0.0

    def written_until(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        times = [now]
        if (oldest := self.in_flight.oldest()) is not None:
            times.append(oldest)
        spool = self.writer.spool
        if spool.recovered:
            times.append(self._recovered_at)
        elif (accepted := spool.oldest_accepted_at) is not None:
            times.append(accepted)
        return min(times)

    async def run(self, stop: asyncio.Event) -> None:
        """Report every ``interval_s`` and after spool changes until ``stop``; then withdraw."""
        self._recovered_at = await recovered_lower_bound(self.writer.spool, self.max_ahead_s)
        changed = self.writer.changed
        try:
            while not stop.is_set():
                changed.clear()
                await self.publish()
                await wait_first(changed, stop, timeout=self.interval_s)
                await asyncio.sleep(MIN_GAP_S)
        finally:
            with contextlib.suppress(*REDIS_DOWN):
                await self.redis.hdel(keys.COLLECTORS, self.ident)

    async def publish(self) -> None:
        now = time.time()
        report = {"written_until": self.written_until(now), "at": now}
        # The writer logs an outage once; a stale report is ignored by the monitor.
        with contextlib.suppress(*REDIS_DOWN):
            await self.redis.hset(keys.COLLECTORS, self.ident, msgpack.packb(report))


async def recovered_lower_bound(spool: Spool, max_ahead_s: float) -> float:
    """A time no later than the acceptance of the records an earlier process spooled."""
    if not spool.recovered:
        return 0.0
    records = await spool.read(1)
    try:
        events = decode_batch(records[0].payload) if records else []
    except ValueError:
        events = []
    return min((e.ts for e in events), default=max_ahead_s) - max_ahead_s
