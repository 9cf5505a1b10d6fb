"""A Redis outage is told in one log line when it starts and one when it ends."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time

import pytest

from tests.collector.conftest import StartCollector
from tests.collector.test_http_ingest import post
from watchfloor.collector.appkeys import WRITER
from watchfloor.core.redis_server import EmbeddedRedis
from watchfloor.security.tokens import TokenStore, load_seal


async def test_an_outage_logs_one_line_down_and_one_back_and_no_traceback(
    start_collector: StartCollector, private_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_collector(private_redis.url)
    store = TokenStore(running.redis, seal=load_seal(running.config.data_path))
    token, _row = await store.create("pbx-1", "producer")
    running = dataclasses.replace(running, token=token)  # a producer, its token cached
    assert (await post(running, json.dumps([]).encode()))[0] == 202
    caplog.set_level(logging.INFO)
    private_redis.stop()
    for i in range(6):
        body = json.dumps([{"type": "heartbeat", "ts": time.time(), "source": "s", "id": str(i)}])
        assert (await post(running, body.encode()))[0] == 202
        await asyncio.sleep(0.3)
    private_redis.start()
    writer = running.app[WRITER]
    deadline = time.monotonic() + 15
    while writer.spool.pending or not writer.redis_up:
        assert time.monotonic() < deadline, "the spool was not replayed"
        await asyncio.sleep(0.1)
    ours = [
        r
        for r in caplog.records
        if r.name.startswith(("watchfloor.collector", "watchfloor.core", "watchfloor.security"))
    ]
    assert not [r for r in ours if r.exc_info], "a traceback was logged"
    lines = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len([m for m in lines if "unreachable" in m]) == 1, lines
    assert len([m for m in lines if "reachable again" in m]) == 1, lines
    assert len(lines) == 2, lines
