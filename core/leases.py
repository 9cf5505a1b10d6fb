"""Leases: a key naming its holder, set with an expiry and renewed while the holder lives.

A monitor worker processes an events shard only while it holds the shard's
lease (``keys.shard_lease(n)``), and the tasks that must run once in the
cluster (playbook timers, the pager, the audit mirror) run only where their
lease (``keys.task_lease(name)``) is held. A holder that dies stops renewing;
its lease expires after ``ttl_s`` and another worker takes it.

Every operation is one Lua script on the lease key alone, so it is atomic on a
single Redis and on a cluster node: acquire is ``SET NX PX``, renew and release
act only if the key still names the caller. Writes that must not land after a
lease was lost check it in their own transaction (:func:`held_in`), which is
what keeps two workers from ever committing one shard's state (fencing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

logger = logging.getLogger(__name__)

_RENEW: Final = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE: Final = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


class LeaseLost(Exception):
    """The caller no longer holds a lease it was writing under."""


async def acquire(redis: Any, key: str, owner: str, ttl_s: float) -> bool:
    """Take ``key`` for ``owner`` if nobody holds it (or ``owner`` already does: renewed)."""
    if await redis.set(key, owner, nx=True, px=_ms(ttl_s)):
        return True
    return await renew(redis, key, owner, ttl_s)


async def renew(redis: Any, key: str, owner: str, ttl_s: float) -> bool:
    """Extend ``owner``'s hold on ``key``; False if it lost it."""
    return bool(await redis.eval(_RENEW, 1, key, owner, _ms(ttl_s)))


async def release(redis: Any, key: str, owner: str) -> bool:
    """Give ``key`` up if ``owner`` holds it (a clean stop: no one waits for the expiry)."""
    return bool(await redis.eval(_RELEASE, 1, key, owner))


async def holder(redis: Any, key: str) -> str | None:
    raw = await redis.get(key)
    return raw.decode() if isinstance(raw, bytes) else raw


async def held_in(pipe: Any, key: str, owner: str) -> None:
    """Inside a :func:`core.redis_tx.transact` body, before ``multi()``: ``key`` is watched
    by the caller; raise :class:`LeaseLost` unless ``owner`` holds it."""
    current = await pipe.get(key)
    if isinstance(current, bytes):
        current = current.decode()
    if current != owner:
        raise LeaseLost(f"{key} is held by {current or 'nobody'}, not {owner}")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


Task = Callable[[asyncio.Event], Awaitable[None]]


class LeasedTask:
    """Runs ``task`` only while this process holds the lease ``key``.

    Tries to take the lease every ``ttl_s / 3``; once held, runs ``task`` with a
    stop event that is set when the outer stop is, or when a renewal fails (the
    task then stops at its next check; whatever it writes under the lease must
    be idempotent for that one renewal period). The lease is released on the way
    out so a standby takes over at once.
    """

    def __init__(self, redis: Any, key: str, owner: str, task: Task, *, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.task = task
        self.ttl_s = ttl_s
        self.held = False

    async def run(self, stop: asyncio.Event) -> None:
        period = self.ttl_s / 3
        while not stop.is_set():
            try:
                self.held = await acquire(self.redis, self.key, self.owner, self.ttl_s)
            except Exception as exc:  # Redis away: try again, never hold blindly
                logger.warning("lease %s: cannot reach Redis: %s", self.key, exc)
                self.held = False
            if self.held:
                logger.info("lease %s taken by %s", self.key, self.owner)
                await self._run_held(stop, period)
                self.held = False
            await wait_or_stop(stop, period)

    async def _run_held(self, stop: asyncio.Event, period: float) -> None:
        inner = asyncio.Event()
        running: asyncio.Task[None] = asyncio.ensure_future(self.task(inner))
        try:
            while not running.done():
                await _wait_any(stop, running, period)
                if stop.is_set():
                    break
                if running.done():
                    break
                try:
                    still = await renew(self.redis, self.key, self.owner, self.ttl_s)
                except Exception as exc:
                    logger.warning("lease %s: renewal failed: %s", self.key, exc)
                    still = False
                if not still:
                    logger.warning("lease %s lost by %s: its task stops", self.key, self.owner)
                    break
        finally:
            inner.set()
            try:
                await running  # the task's own error (if any) surfaces here
            finally:
                try:
                    await release(self.redis, self.key, self.owner)
                except Exception as exc:
                    logger.warning("lease %s: release failed (it expires): %s", self.key, exc)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, task: asyncio.Task[Any], seconds: float) -> None:
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopper, task}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
