"""Monitor workers on a real Redis: leases, a fair share, hand-over, fencing, one id each.

Workers run in this process (each a real :class:`MonitorWorker` with real shard
engines on real streams); the process-level faults (a worker SIGKILLed, two
started at once) are in tests/reliability/.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest

from watchfloor.core import engine_status, keys, leases
from watchfloor.core.bus import BATCH_FIELD
from watchfloor.core.config import load_config
from watchfloor.core.events import AgentMessage, Event, encode_batch
from watchfloor.core.incidents import IncidentStore
from watchfloor.core.leases import LeaseLost
from watchfloor.core.shards import split
from watchfloor.monitor import checkpoint as ckpt
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.lifecycle import ROLLUP_SUBJECT, Action
from watchfloor.monitor.service import MonitorService
from watchfloor.monitor.worker import MonitorWorker, WorkerIdInUse

SHARDS = 4
CONFIG = load_config(
    f"[redis]\nshards = {SHARDS}\n[monitor]\nblock_ms = 20\nlease_s = 1.5\n"
    "checkpoint_interval_s = 0.1\n"
)
ID_TEXT = "客户身份证号 11010519491231002X 请核对"


def leak(agent: str, ts: float) -> AgentMessage:
    return AgentMessage(
        ts=ts, source="im", agent_id=agent, conversation_id=f"c-{agent}", channel="chat",
        direction="to_customer", text=ID_TEXT,
    )  # fmt: skip


async def publish(redis: Any, events: list[Event]) -> None:
    for shard, indexes in split(events, SHARDS).items():
        batch = encode_batch([events[i] for i in indexes])
        await redis.xadd(keys.events_shard(shard), {BATCH_FIELD: batch})


def worker(redis: Any, worker_id: str) -> MonitorWorker:
    def engine(shard: int, rules: Any) -> MonitorService:
        return MonitorService(
            redis, CONFIG, rules=rules, consumer_name=worker_id, shard=shard, owner=worker_id
        )

    return MonitorWorker(redis, CONFIG, engine, worker_id=worker_id)


@contextlib.asynccontextmanager
async def running(w: MonitorWorker) -> AsyncIterator[tuple[asyncio.Event, asyncio.Task[None]]]:
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        yield stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout}s")


async def open_subjects(redis: Any) -> list[str]:
    return sorted(i.subject for i in await IncidentStore(redis).list("open"))


async def test_two_workers_share_the_shards_and_every_event_is_judged_once(any_redis) -> None:
    w1, w2 = worker(any_redis, "w1"), worker(any_redis, "w2")
    async with running(w1), running(w2):
        await until(
            lambda: _async(len(w1.held) == len(w2.held) == SHARDS // 2), 10, "a fair share each"
        )
        assert set(w1.held).isdisjoint(w2.held)
        agents = [f"a-{n}" for n in range(8)]
        await publish(any_redis, [leak(a, time.time()) for a in agents])
        await until(lambda: _eq(open_subjects(any_redis), agents), 10, "a leak per agent")
        await until(lambda: _folded_events(any_redis, len(agents)), 10, "every event in the status")
        # Read while both run: once the second stops, the first may rightly take its
        # shards over (free two ticks running) before it stops too.
        status = await engine_status.read(any_redis)
    assert int(status["events"]) == len(agents)  # judged once, by one worker each
    assert status["consumer"] == "w1,w2"
    incidents = await IncidentStore(any_redis).list("all")
    assert sorted(i.subject for i in incidents) == agents  # none twice


async def test_a_worker_that_stops_hands_its_shards_over_at_once(any_redis) -> None:
    w1, w2 = worker(any_redis, "w1"), worker(any_redis, "w2")
    async with running(w2):
        async with running(w1):
            await until(lambda: _async(len(w1.held) == len(w2.held) == 2), 10, "a fair share")
        # w1 committed and released its leases on the way out: w2 need not wait for expiry
        took = await until(lambda: _async(len(w2.held) == SHARDS), 5, "w2 holding every shard")
        assert took < CONFIG.monitor.lease_s, f"took {took:.2f}s: waited for the leases to expire"
        await publish(any_redis, [leak(f"b-{n}", time.time()) for n in range(6)])
        await until(lambda: _async_len(open_subjects(any_redis), 6), 10, "six leaks on w2")


async def test_a_worker_whose_leases_lapse_lets_another_take_them(redis_client) -> None:
    """A worker that stops renewing (as a dead one does) loses its shards to the living one
    after the lease period, and the taker resumes from their checkpoints."""
    w1, w2 = worker(redis_client, "w1"), worker(redis_client, "w2")
    stop1 = asyncio.Event()
    task1 = asyncio.create_task(w1.run(stop1))
    async with running(w2):
        await until(lambda: _async(len(w1.held) == len(w2.held) == 2), 10, "a fair share")
        # w1 dies: its engines stop; its leases stay as its last renewal left them
        frozen = list(w1.held)
        task1.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task1
        for shard in frozen:
            await redis_client.set(keys.shard_lease(shard), "w1", px=1500)  # as if last renewed
        await redis_client.hset(
            keys.WORKERS, "w1", msgpack.packb({"beat": time.time(), "instance": "x"})
        )
        took = await until(lambda: _async(len(w2.held) == SHARDS), 10, "w2 taking w1's shards")
        assert 1.0 <= took <= CONFIG.monitor.lease_s + 3 * w2.tick_s, took  # after the expiry
        await publish(redis_client, [leak(f"c-{n}", time.time()) for n in range(6)])
        await until(lambda: _async_len(open_subjects(redis_client), 6), 10, "six leaks on w2")


async def test_a_second_live_process_with_the_same_worker_id_is_refused(redis_client) -> None:
    async with running(worker(redis_client, "w1")):
        await until(lambda: redis_client.exists(keys.worker_instance("w1")), 5, "w1 registered")
        twin = worker(redis_client, "w1")
        with pytest.raises(WorkerIdInUse, match="'w1' is in use by pid"):
            await twin.run(asyncio.Event())


async def test_a_commit_under_a_lease_held_by_another_worker_writes_nothing(any_redis) -> None:
    await any_redis.set(keys.SHARDS, SHARDS)
    await leases.acquire(any_redis, keys.shard_lease(1), "w2", 30)
    stale = MonitorService(any_redis, CONFIG, consumer_name="w1", shard=1, owner="w1")
    await stale.start()
    stale.state.last_id = "99-0"
    with pytest.raises(LeaseLost, match="held by w2"):
        await stale.commit(force=True)
    assert await any_redis.get(keys.engine_checkpoint(1)) is None
    assert (await ckpt.load(any_redis, 1)).last_id == "0-0"


async def test_the_incident_cap_is_counted_over_every_shard(any_redis) -> None:
    """Two shards' appliers with a cap of 2 a minute: five subjects open two incidents and
    one roll-up naming the other three; the roll-up resolves when they have all cleared."""
    store = IncidentStore(any_redis)
    appliers = [ckpt.ActionApplier(store, shard=n, cap_per_minute=2) for n in (0, 1)]
    at = 1_800_000_000.0

    def fire(subject: str) -> Action:
        return Action("fire", Signal("surge.offered", "surge", subject, "minor", subject), at)

    for n, subject in enumerate(["q1", "q2", "q3", "q4", "q5"]):
        await appliers[n % 2].apply([fire(subject)])
    incidents = await store.list("open")
    assert sorted(i.subject for i in incidents) == [ROLLUP_SUBJECT, "q1", "q2"]
    rollup = next(i for i in incidents if i.subject == ROLLUP_SUBJECT)
    assert rollup.evidence["subjects"] == ["q3", "q4", "q5"]
    for n, subject in enumerate(["q3", "q4", "q5"]):
        clear = Action("clear", Signal("surge.offered", "surge", subject, "minor", ""), at + 60)
        await appliers[n % 2].apply([clear])
    assert sorted(i.subject for i in await store.list("open")) == ["q1", "q2"]


def test_a_changed_shard_count_is_refused_naming_both(redis_url, tmp_path) -> None:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).set(keys.SHARDS, 16)
    done = subprocess.run(
        [sys.executable, "-m", "watchfloor", "monitor", "--redis", redis_url, "--no-api",
         "--data-dir", str(tmp_path)],
        env={**_env(), "WATCHFLOOR_REDIS_SHARDS": "8"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "16 events shards" in done.stderr and "says 8" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}


async def _async(value: bool) -> bool:
    return value


async def _eq(coro: Any, expected: Any) -> bool:
    return await coro == expected


async def _async_len(coro: Any, n: int) -> bool:
    return len(await coro) == n


async def _folded_events(redis: Any, n: int) -> bool:
    return int((await engine_status.read(redis)).get("events", 0)) >= n
