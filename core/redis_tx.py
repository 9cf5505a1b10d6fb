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
fresh data like a conflict. ``exists``/``delete``/``touch``/``unlink`` before
``multi()``, which redis-py's cluster pipeline never sends, raise
:class:`TransactionMisuse` instead of answering wrong.
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


class TransactionMisuse(RuntimeError):
    """``fn`` used a command the cluster pipeline cannot run between WATCH and ``multi()``."""


async def transact(
    redis: aioredis.Redis,
    keys: Sequence[str],
    fn: Callable[[Any], Awaitable[T]],
    retries: int = RETRIES,
) -> T:
    """Run ``fn(pipe)`` under ``WATCH keys`` and execute what it queued after ``multi()``."""
    async with redis.pipeline(transaction=True) as pipe:
        cluster = not hasattr(pipe, "explicit_transaction")
        for _ in range(retries):
            try:
                await pipe.watch(*keys)
                seen = _ClusterGuard(pipe) if cluster else pipe
                result = await fn(seen)
                if seen.explicit_transaction:
                    await pipe.execute()
                else:
                    await pipe.reset()  # nothing to write: release the watch
                return result
            except WatchError:
                continue  # execute() has reset the pipeline: watch and read again
    raise TransactionConflict(f"{list(keys)} changed during each of {retries} attempts")


class _ClusterGuard:
    """The cluster pipeline as ``fn`` sees it: refuses what redis-py would silently drop.

    Between WATCH and ``multi()`` redis-py's ``ClusterPipeline`` runs each command at
    once, except ``exists``, ``delete``, ``touch`` and ``unlink``: those are split by
    slot, never sent, and return the pipeline itself (so ``await pipe.exists(k)`` is
    truthy whatever the key). Code that works on a single Redis would then be wrong
    on a cluster without a sound; this says so instead.
    """

    _DROPPED = frozenset({"exists", "delete", "touch", "unlink"})

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self.explicit_transaction = False
        """Whether ``fn`` called ``multi()``, as redis-py's single-node pipeline says it
        (the cluster pipeline keeps it in a private strategy object)."""

    def multi(self) -> None:
        self._pipe.multi()
        self.explicit_transaction = True

    def __getattr__(self, name: str) -> Any:
        if name in self._DROPPED and not self.explicit_transaction:
            raise TransactionMisuse(
                f"{name}() between WATCH and multi() is never sent by redis-py's cluster "
                f"pipeline; read with another command, or call {name}() after multi()"
            )
        return getattr(self._pipe, name)
