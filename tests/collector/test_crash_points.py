"""A collector process killed at every step of ingest and spool replay loses no
acknowledged event and stores none twice.

Each case arms one fault point (``collector.faults``): the real ``watchfloor
collector`` process exits there as if SIGKILLed; it is started again without the
fault and the producer resends every batch it has no 202 for, as a producer does.
Then every acknowledged event must be in the events stream exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import ADMIN, all_events
from watchfloor.collector.faults import ENV, INGEST_POINTS, SPOOL_POINTS
from watchfloor.core.redis_server import EmbeddedRedis, free_port

WATCHFLOOR = [sys.executable, "-c", "from watchfloor.cli import main; raise SystemExit(main())"]
HEADERS = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
BATCHES, PER_BATCH = 3, 50


class CollectorProcess:
    def __init__(self, data_dir: Path, redis_url: str) -> None:
        self.data_dir, self.redis_url, self.port = data_dir, redis_url, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir()
        # No heartbeat: the collector's own events would reach the fault points first.
        (data_dir / "watchfloor.toml").write_text("[collector]\nheartbeat_interval_s = 0\n")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, fault: str | None = None) -> None:
        env = {**os.environ, "WATCHFLOOR_ADMIN_TOKEN": ADMIN}
        env.pop(ENV, None)
        if fault:
            env[ENV] = fault
        command = [*WATCHFLOOR, "collector", "--data-dir", str(self.data_dir),
                   "--redis", self.redis_url, "--port", str(self.port)]  # fmt: skip
        log = (self.data_dir / "collector.out").open("ab")
        self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def batch(n: int) -> list[dict[str, Any]]:
    """Health reports of 8 components: each batch is written to several events shards."""
    now = time.time()
    return [
        {"type": "health", "ts": now, "source": "pbx-1", "id": f"b{n}-e{i}",
         "component": f"node-{i % 8}", "status": "up"}
        for i in range(PER_BATCH)
    ]  # fmt: skip


async def send(url: str, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The 202 answer, or None when the collector went away before answering."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/v1/events",
                data=json.dumps(events),
                headers=HEADERS,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp,  # fmt: skip
        ):
            assert resp.status == 202, await resp.text()
            return dict(await resp.json())
    except (aiohttp.ClientConnectionError, TimeoutError):
        return None


async def send_until_acked(proc: CollectorProcess, events: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 30
    while await send(proc.url, events) is None:
        assert time.monotonic() < deadline, "the collector never answered"
        await asyncio.sleep(0.1)


async def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def spool_drained(proc: CollectorProcess) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{proc.url}/healthz") as resp,
        ):
            body = await resp.json()
    except aiohttp.ClientConnectionError:
        return False
    return body["spool_batches"] == 0 and body["redis"] == "up"


async def stored_ids(redis_url: str) -> Counter[str]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        return Counter(e.id for e in await all_events(client))
    finally:
        await client.aclose()


def record(point: str, sent: list[list[dict[str, Any]]], acked: set[str], stored: Counter[str]):
    """Print the counted row (``pytest -s`` shows the table) and check it."""
    ids = {e["id"] for b in sent for e in b}
    print(f"\n{point:<18} sent {len(ids)} acknowledged {len(acked)} stored {stored.total()}")
    assert not [i for i in acked if stored[i] == 0], f"{point}: acknowledged events lost"
    assert not [i for i, n in stored.items() if n > 1], f"{point}: events stored twice"


async def restart_and_resend(
    proc: CollectorProcess, sent: list[list[dict[str, Any]]], acked: set[str]
) -> None:
    """Start the collector again; the producer resends every batch it has no 202 for."""
    proc.start()
    for events in sent:
        if events[0]["id"] not in acked:
            await send_until_acked(proc, events)
            acked.update(e["id"] for e in events)
    await wait_for(lambda: spool_drained(proc), "spool drained")


@pytest.mark.parametrize("point", INGEST_POINTS)
async def test_a_crash_at_an_ingest_step_loses_and_duplicates_nothing(
    tmp_path: Path, private_redis: EmbeddedRedis, point: str
) -> None:
    proc = CollectorProcess(tmp_path / "data", private_redis.url)
    sent = [batch(n) for n in range(BATCHES)]
    acked: set[str] = set()
    proc.start(fault=point)
    try:
        await wait_for(lambda: up(proc), "collector up")
        assert await send(proc.url, sent[0]) is None, "the fault point was not reached"
        assert proc.wait_exit() == 137
        await restart_and_resend(proc, sent, acked)
    finally:
        proc.stop()
    record(point, sent, acked, await stored_ids(private_redis.url))


@pytest.mark.parametrize("point", SPOOL_POINTS)
async def test_a_crash_at_a_spool_or_replay_step_loses_and_duplicates_nothing(
    tmp_path: Path, private_redis: EmbeddedRedis, point: str
) -> None:
    proc = CollectorProcess(tmp_path / "data", private_redis.url)
    sent = [batch(n) for n in range(BATCHES)]
    acked: set[str] = set()
    private_redis.stop()  # every batch is spooled
    proc.start(fault=point)
    try:
        await wait_for(lambda: up(proc), "collector up")
        for events in sent:
            if await send(proc.url, events) is None:
                break
            acked.update(e["id"] for e in events)
        private_redis.start()  # the replay starts (and the armed replay steps crash it)
        assert proc.wait_exit() == 137
        await restart_and_resend(proc, sent, acked)
    finally:
        proc.stop()
    record(point, sent, acked, await stored_ids(private_redis.url))


async def up(proc: CollectorProcess) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/healthz"):
            return True
    except aiohttp.ClientConnectionError:
        return False
