"""A monitor worker: the events shards it leases, one engine each, and a fair share.

Every ``watchfloor monitor`` process is a worker with an id (``--worker-id``,
default host and pid). Each tick (``TICK_S``) it

1. beats: its entry in ``keys.WORKERS`` and its instance key (a second live
   process with the same id is refused at start);
2. renews the lease of every shard it holds; a shard whose renewal fails is
   dropped at once (its engine stops without writing: its commits are fenced by
   the lease anyway, :func:`monitor.checkpoint.commit`);
3. balances: with ``W`` live workers (beats within ``monitor.lease_s``) its fair
   share is ``ceil(shards / W)``. Below it, it takes free shards; above it, it
   gives its highest shards up cleanly (final checkpoint, then the lease is
   released, so the taker resumes at once from that checkpoint). A shard free
   for two ticks in a row is an orphan (its holder died): taken even beyond the
   share, so no shard waits for the balance.

Each held shard runs a :class:`~monitor.service.MonitorService` on that shard's
stream, checkpoint and status (``keys.events_shard(n)``...). A worker that dies
loses its leases when they expire (``monitor.lease_s``); the others take its
shards within that plus two ticks, adopting its pending entries and resuming
from each shard's last checkpoint, so nothing acknowledged is skipped, and
incidents stay single across workers (the store opens one per fingerprint).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from watchfloor.core import keys, leases
from watchfloor.core.shards import ensure_count, shard_of
from watchfloor.monitor.service import MonitorService

logger = logging.getLogger(__name__)

TICK_S: Final = 1.0
"""Beat, renewals and balance, this often (at most a third of the lease)."""


class WorkerIdInUse(Exception):
    """Another live process runs with this worker id."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Held:
    service: MonitorService
    stop: asyncio.Event
    task: asyncio.Task[None]


ServiceFactory = Callable[[int, Any], MonitorService]
"""``(shard, rules)`` -> the engine service of one shard (the process wires hooks and the
audit in; ``rules`` None: the configured rules file)."""


class MonitorWorker:
    """Leases shards and runs one engine per held shard."""

    def __init__(
        self,
        redis: Any,
        config: Any,
        factory: ServiceFactory,
        *,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.config = config
        self.factory = factory
        self.id = worker_id or config.monitor.worker_id or default_worker_id()
        self.shards: int = config.redis.shards
        self.lease_s: float = config.monitor.lease_s
        self.tick_s = min(TICK_S, self.lease_s / 3)
        self.clock = clock
        self.instance = secrets.token_hex(8)
        self.held: dict[int, _Held] = {}
        self._free_before: set[int] = set()
        self._releasing: set[int] = set()
        self.taken = 0
        self.given_up = 0
        self.rules: Any = None
        """The rules new shard engines are built from (None: the configured file; a live
        reload sets them)."""

    # --- the loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_count(self.redis, self.shards)
        await self._claim_id()
        logger.info(
            "monitor worker %s started shards=%d lease=%.0fs", self.id, self.shards, self.lease_s
        )
        try:
            while not stop.is_set():
                try:
                    await self._tick()
                except Exception as exc:  # Redis away: leases lapse, engines back off
                    logger.warning("worker %s tick failed: %s", self.id, exc)
                await leases.wait_or_stop(stop, self.tick_s)
        finally:
            await self._give_up_all()
            await self._leave()

    async def _tick(self) -> None:
        await self._beat()
        await self._renew()
        self._reap()
        await self._balance()

    # --- identity -----------------------------------------------------------------------

    async def _claim_id(self) -> None:
        key = keys.worker_instance(self.id)
        me = msgpack.packb(
            {"instance": self.instance, "pid": os.getpid(), "host": socket.gethostname()}
        )
        ttl = round(self.lease_s * 1000)
        if await self.redis.set(key, me, nx=True, px=ttl):
            return
        raw = await self.redis.get(key)
        other = msgpack.unpackb(raw) if raw else {}
        if other and _dead_here(other):
            logger.warning("worker id %s: its previous process (pid %s) is gone", self.id,
                           other.get("pid"))  # fmt: skip
            await self.redis.set(key, me, px=ttl)
            return
        if other:
            raise WorkerIdInUse(
                f"monitor worker id {self.id!r} is in use by pid {other.get('pid')} on "
                f"{other.get('host')}: give this process another --worker-id, or stop that one "
                f"(its claim expires {self.lease_s:.0f}s after it stops)"
            )
        await self.redis.set(key, me, px=ttl)

    async def _beat(self) -> None:
        now = self.clock()
        entry = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "instance": self.instance,
            "beat": now,
            "shards": sorted(self.held),
        }
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.WORKERS, self.id, msgpack.packb(entry))
            pipe.pexpire(keys.worker_instance(self.id), round(self.lease_s * 1000))
            await pipe.execute()

    async def _leave(self) -> None:
        try:
            await self.redis.hdel(keys.WORKERS, self.id)
            await self.redis.delete(keys.worker_instance(self.id))
        except Exception as exc:
            logger.warning("worker %s could not sign off (its entry expires): %s", self.id, exc)

    async def live_workers(self) -> list[str]:
        """Ids of workers that beat within one lease period (this one included)."""
        now = self.clock()
        live = []
        for raw_id, raw in (await self.redis.hgetall(keys.WORKERS)).items():
            worker_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            try:
                beat = float(msgpack.unpackb(raw).get("beat", 0))
            except Exception:
                beat = 0.0
            if now - beat <= self.lease_s:
                live.append(worker_id)
            elif now - beat > 10 * self.lease_s:
                await self.redis.hdel(keys.WORKERS, worker_id)  # long gone: tidy up
        if self.id not in live:
            live.append(self.id)
        return sorted(live)

    # --- leases -------------------------------------------------------------------------

    async def _renew(self) -> None:
        for shard in list(self.held):
            if not await leases.renew(self.redis, keys.shard_lease(shard), self.id, self.lease_s):
                logger.warning("worker %s lost the lease of shard %d", self.id, shard)
                await self._drop(shard, clean=False)

    def _reap(self) -> None:
        """Shards whose engine ended by itself (lease lost at a commit, a failure)."""
        for shard, held in list(self.held.items()):
            if held.task.done():
                self.held.pop(shard)
                if not held.task.cancelled() and held.task.exception() is not None:
                    logger.error("shard %d engine failed", shard, exc_info=held.task.exception())
                self._releasing.add(shard)

    async def _balance(self) -> None:
        for shard in sorted(self._releasing):
            await self._release(shard)
        self._releasing.clear()
        live = await self.live_workers()
        fair = math.ceil(self.shards / len(live))
        holders = await self._holders()
        free = {n for n, who in holders.items() if who is None}
        orphans = free & self._free_before
        self._free_before = free
        if len(self.held) > fair:
            for shard in sorted(self.held, reverse=True)[: len(self.held) - fair]:
                logger.info("worker %s gives shard %d up (fair share %d)", self.id, shard, fair)
                await self._drop(shard, clean=True)
            return
        start = _offset(self.id, self.shards)
        for shard in sorted(free, key=lambda n: (n - start) % self.shards):
            if len(self.held) >= fair and shard not in orphans:
                continue
            if await leases.acquire(self.redis, keys.shard_lease(shard), self.id, self.lease_s):
                self._start(shard)

    async def _holders(self) -> dict[int, str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.shards):
                pipe.get(keys.shard_lease(shard))
            replies = await pipe.execute()
        return {
            shard: (raw.decode() if isinstance(raw, bytes) else raw)
            for shard, raw in enumerate(replies)
        }

    # --- shard engines ------------------------------------------------------------------

    def _start(self, shard: int) -> None:
        service = self.factory(shard, self.rules)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop), name=f"shard-{shard}")
        self.held[shard] = _Held(service, stop, task)
        self.taken += 1
        logger.info("worker %s took shard %d", self.id, shard)

    async def _drop(self, shard: int, *, clean: bool) -> None:
        """Stop a shard's engine: ``clean`` commits its last state and releases the lease
        (a hand-over); otherwise the lease is already gone and nothing is written."""
        held = self.held.pop(shard, None)
        if held is None:
            return
        if not clean:
            held.service.owner = f"{self.id}:lost"  # any commit in flight is refused
        held.stop.set()
        try:
            await held.task
        except Exception:
            logger.exception("shard %d engine failed while stopping", shard)
        if clean:
            await self._release(shard)
        self.given_up += 1

    async def _release(self, shard: int) -> None:
        try:
            await leases.release(self.redis, keys.shard_lease(shard), self.id)
        except Exception as exc:
            logger.warning("shard %d lease not released (it expires): %s", shard, exc)

    async def _give_up_all(self) -> None:
        """Every shard's engine stops at once (each may be in a blocking read) and
        commits; then the leases go."""
        for held in self.held.values():
            held.stop.set()
        await asyncio.gather(
            *(self._drop(shard, clean=True) for shard in sorted(self.held)),
            return_exceptions=True,
        )

    # --- what the process asks ----------------------------------------------------------

    @property
    def services(self) -> list[MonitorService]:
        return [held.service for _, held in sorted(self.held.items())]

    def swap_rules(self, rules: Any) -> None:
        """A live reload: every held shard's engine, and the engines of shards taken later."""
        for service in self.services:
            service.swap_rules(rules)
        self.rules = rules


def _offset(worker_id: str, shards: int) -> int:
    """Where a worker starts looking for free shards (workers starting together spread)."""
    return shard_of(worker_id, shards)


def _dead_here(other: dict[str, Any]) -> bool:
    """Whether the recorded process ran on this host and is gone."""
    if other.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(other.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False
