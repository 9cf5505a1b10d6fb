"""The producer client: batching by size and time, retries, refusals, signing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from aiohttp import web

from tests.collector.conftest import Running, StartCollector, all_events
from watchfloor.collector.client import ProducerClient
from watchfloor.collector.errors import ProducerError
from watchfloor.core.events import Heartbeat
from watchfloor.security.signing import SigningKeys
from watchfloor.security.tokens import TokenStore

NOW = time.time()


def beat(i: int) -> dict[str, Any]:
    return {"type": "heartbeat", "ts": NOW + i, "source": "acd-1", "id": f"hb-{i}"}


@pytest.fixture
async def flaky(serve_app: Any) -> tuple[str, list[int]]:
    """A server answering 503 (with Retry-After), then a dropped connection, then 202."""
    calls: list[int] = []

    async def events(request: web.Request) -> web.StreamResponse:
        await request.read()
        calls.append(len(calls))
        if len(calls) == 1:
            return web.json_response({"error": "spool full"}, status=503,
                                     headers={"Retry-After": "0"})  # fmt: skip
        if len(calls) == 2:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return web.json_response({"accepted": 1, "rejected": [], "duplicates": 0}, status=202)

    app = web.Application()
    app.router.add_post("/v1/events", events)
    return await serve_app(app), calls


async def test_a_batch_is_retried_through_503_and_a_dropped_connection(
    flaky: tuple[str, list[int]],
) -> None:
    url, calls = flaky
    async with ProducerClient(url, "t", retry_for_s=10) as client:
        answer = await client.send_batch([beat(1)])
    assert answer["accepted"] == 1
    assert len(calls) == 3 and client.stats.retries == 2


@pytest.mark.parametrize(("token", "status"), [("wrong", 401), (None, 401)])
async def test_a_refusal_that_retrying_cannot_fix_is_raised_at_once(
    collector: Running, token: str | None, status: int
) -> None:
    started = time.monotonic()
    with pytest.raises(ProducerError) as caught:
        async with ProducerClient(collector.url, token) as client:
            await client.send(beat(1))
    assert caught.value.status == status
    assert time.monotonic() - started < 3


async def test_events_go_out_when_the_batch_is_full_or_the_linger_expires(
    collector: Running,
) -> None:
    async with ProducerClient(collector.url, collector.token, batch_size=10, linger_s=0.2) as c:
        for i in range(25):
            await c.send(Heartbeat(ts=NOW + i, source="acd-1", id=f"hb-{i}"))
        await c.drain()
        assert len(await all_events(collector.redis)) == 20  # two full batches
        await asyncio.sleep(0.5)
        await c.drain()
        assert len(await all_events(collector.redis)) == 25  # the rest after the linger
    assert c.stats.batches == 3


async def test_the_client_signs_its_batches_for_a_signed_source(
    start_collector: StartCollector, redis_url: str, redis_client: Any, data_dir: Path
) -> None:
    secret = SigningKeys.add(data_dir, "acd-1")
    running = await start_collector(redis_url)
    token, _ = await TokenStore(redis_client).create("acd-1", "producer")
    async with ProducerClient(running.url, token, signing_secret=secret, compress=True) as c:
        await c.send_many(beat(i) for i in range(5))
    assert c.stats.accepted == 5
    with pytest.raises(ProducerError):
        async with ProducerClient(running.url, token) as unsigned:
            await unsigned.send(beat(9))


@pytest.fixture
async def forgetful_stream(serve_app: Any) -> tuple[str, list[int]]:
    """A stream that drops the first connection after two unanswered batches."""
    connections: list[int] = []

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connections.append(0)
        first = len(connections) == 1
        seq = 0
        async for msg in ws:
            seq += 1
            connections[-1] += 1
            if first and seq == 2:
                await ws.close()
                break
            if not first:
                n = len(msgpack.unpackb(msg.data))
                await ws.send_json({"seq": seq, "accepted": n, "rejected": [], "duplicates": 0})
        return ws

    app = web.Application()
    app.router.add_get("/v1/events/stream", stream)
    return await serve_app(app), connections


async def test_unanswered_stream_batches_are_sent_again_after_a_reconnect(
    forgetful_stream: tuple[str, list[int]],
) -> None:
    url, connections = forgetful_stream
    client = ProducerClient(url, "t", transport="ws", batch_size=5, max_in_flight=2)
    async with client:
        for i in range(20):
            await client.send(beat(i))
    assert client.stats.accepted == 20 and client.stats.retries >= 1
    assert len(connections) == 2
