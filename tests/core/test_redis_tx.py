"""The optimistic-transaction helper against a real Redis: no lost update, bounded retries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from watchfloor.core.redis_tx import TransactionConflict, transact

KEY = "test:tx:counter"


async def test_concurrent_read_modify_writes_lose_no_update(redis_client: Any) -> None:
    async def increment(pipe: Any) -> int:
        value = int(await pipe.get(KEY) or 0)
        await asyncio.sleep(0)  # let the other writers read the same value
        pipe.multi()
        pipe.set(KEY, value + 1)
        return value + 1

    results = await asyncio.gather(*(transact(redis_client, [KEY], increment) for _ in range(20)))
    assert int(await redis_client.get(KEY)) == 20
    assert sorted(results) == list(range(1, 21))


async def test_a_transaction_that_writes_nothing_returns_and_releases_the_watch(
    redis_client: Any,
) -> None:
    async def look(pipe: Any) -> bytes | None:
        return await pipe.get(KEY)  # type: ignore[no-any-return]

    assert await transact(redis_client, [KEY], look) is None
    await redis_client.set(KEY, "1")  # no watch left: nothing to fail


async def test_a_key_that_changes_on_every_attempt_gives_up_after_the_retries(
    redis_client: Any,
) -> None:
    attempts = 0

    async def contended(pipe: Any) -> None:
        nonlocal attempts
        attempts += 1
        await redis_client.incr(KEY)  # another client writes between WATCH and EXEC
        pipe.multi()
        pipe.set(KEY, "mine")

    with pytest.raises(TransactionConflict, match="3 attempts"):
        await transact(redis_client, [KEY], contended, retries=3)
    assert attempts == 3 and await redis_client.get(KEY) == b"3"
