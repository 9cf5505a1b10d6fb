"""One optimistic transaction: WATCH, read, MULTI, EXEC, retried a bounded number of times.

Every read-modify-write on shared Redis state goes through :func:`transact`, so
the retry loop (and its bound) is written once. ``fn`` gets the pipeline in
immediate mode with ``keys`` watched: it reads (and may watch more keys), then
calls ``pipe.multi()`` and queues its writes. ``transact`` executes them; when
another client changed a watched key first, it runs ``fn`` again on fresh data.
An ``fn`` that does not call ``multi()`` decided to write nothing: its result is
returned and the watch released.

The same code runs on a Redis Cluster (redis-py's ``ClusterPipeline`` with its
transaction strategy): there every key watched, read and written must hash to one
slot (``core.keys`` gives keys written together one hash tag); a key of another
slot raises ``CrossSlotTransactionError`` at once. A connection lost while
watching (a failover) surfaces as a ``WatchError`` there, so it is retried on
fresh data like a conflict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import WatchError

T = TypeVar("T")

RETRIES = 100
"""Attempts before giving up: each failure means another writer committed, so the
loop only runs out under a write storm on one key (a bug, not a load)."""


class TransactionConflict(RuntimeError):
    """Watched keys kept changing for every attempt of one transaction."""


async def transact(
    redis: aioredis.Redis,
    keys: Sequence[str],
    fn: Callable[[Any], Awaitable[T]],
    retries: int = RETRIES,
) -> T:
    """Run ``fn(pipe)`` under ``WATCH keys`` and execute what it queued after ``multi()``."""
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(retries):
            try:
                await pipe.watch(*keys)
                result = await fn(pipe)
                if _in_multi(pipe):
                    await pipe.execute()
                else:
                    await pipe.reset()  # nothing to write: release the watch
                return result
            except WatchError:
                continue  # execute() has reset the pipeline: watch and read again
    raise TransactionConflict(f"{list(keys)} changed during each of {retries} attempts")


def _in_multi(pipe: Any) -> bool:
    """Whether ``fn`` called ``multi()`` (and so queued writes) on ``pipe``."""
    flag = getattr(pipe, "explicit_transaction", None)
    if flag is not None:  # redis.asyncio.client.Pipeline
        return bool(flag)
    # The cluster pipeline keeps the flag in a private strategy object. Before
    # multi() it runs each command at once and queues nothing; after, it queues:
    # a queued command means multi() was called. (multi() with nothing queued
    # writes nothing, so releasing the watch instead is the same.)
    return len(pipe) > 0
