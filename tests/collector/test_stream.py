"""GET /v1/events/stream: batches over a WebSocket, answered in order with sequence numbers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import Running, StartCollector, all_events, pack
from watchfloor.collector.client import ProducerClient
from watchfloor.collector.errors import ProducerError

NOW = time.time()


def stats(i: int, queue: str = "presale-chat") -> dict[str, Any]:
    return {
        "type": "queue.stats", "ts": NOW + i / 10_000, "source": "acd-1", "id": f"q-{i}",
        "queue": queue, "channel": "chat", "waiting": i, "longest_wait_s": 1.5,
        "agents_available": 3, "agents_busy": 5,
    }  # fmt: skip


async def test_each_message_is_answered_in_order_with_its_sequence_number(
    start_collector: StartCollector, any_redis_url: str
) -> None:
    collector = await start_collector(any_redis_url)  # on a single Redis and on a cluster
    messages: list[str | bytes] = [
        pack([stats(1), stats(2)]),
        json.dumps([stats(3), {"type": "queue.stats"}]),
        b"\xc1 not msgpack",
        json.dumps([stats(3)]),
    ]
    async with (
        aiohttp.ClientSession(headers=collector.headers) as session,
        session.ws_connect(f"{collector.url}/v1/events/stream") as ws,
    ):
        for message in messages:
            await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        answers = [await ws.receive_json(timeout=5) for _ in messages]
    assert [a["seq"] for a in answers] == [1, 2, 3, 4]
    assert answers[0] == {"seq": 1, "accepted": 2, "rejected": [], "duplicates": 0}
    assert answers[1]["accepted"] == 1
    assert [r["index"] for r in answers[1]["rejected"]] == [1]
    assert answers[2]["status"] == 400 and "msgpack" in answers[2]["error"]
    assert answers[3] == {"seq": 4, "accepted": 0, "rejected": [], "duplicates": 1}
    assert [e.id for e in await all_events(collector.redis)] == ["q-1", "q-2", "q-3"]


async def test_the_stream_refuses_the_handshake_without_a_token(collector: Running) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(f"{collector.url}/v1/events/stream")
    assert caught.value.status == 401


async def test_a_message_over_the_body_limit_closes_the_stream(collector: Running) -> None:
    async with (
        aiohttp.ClientSession(headers=collector.headers) as session,
        session.ws_connect(f"{collector.url}/v1/events/stream") as ws,
    ):
        await ws.send_bytes(b"\x90" * (1024 * 1024 + 10))
        msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
async def test_the_client_pipelines_batches_over_the_stream(
    collector: Running, encoding: str
) -> None:
    client = ProducerClient(
        collector.url, collector.token, transport="ws", encoding=encoding, batch_size=100
    )
    async with client:
        for i in range(1000):
            await client.send(stats(i))
    assert (client.stats.batches, client.stats.accepted) == (10, 1000)
    assert len(await all_events(collector.redis)) == 1000


async def test_signed_producers_are_refused_on_the_stream(
    start_collector: StartCollector, redis_url: str
) -> None:
    running = await start_collector(redis_url, signatures=lambda name: ["whsec_x"])
    client = ProducerClient(running.url, running.token, transport="ws", retry_for_s=1)
    with pytest.raises(ProducerError) as caught:
        async with client:
            await client.send(stats(1))
    assert caught.value.status == 403


async def test_the_stream_stops_reading_while_redis_writes_are_stalled(
    collector: Running,
) -> None:
    from watchfloor.collector.appkeys import METRICS
    from watchfloor.collector.ws import IN_FLIGHT

    metrics = collector.app[METRICS]
    frames = [pack([stats(i * 1000 + j) for j in range(500)]) for i in range(40)]
    async with (
        aiohttp.ClientSession(headers=collector.headers) as session,
        session.ws_connect(f"{collector.url}/v1/events/stream") as ws,
    ):
        await collector.redis.execute_command("CLIENT", "PAUSE", "2000", "WRITE")
        sending = asyncio.gather(*(ws.send_bytes(f) for f in frames))
        await asyncio.sleep(0.8)
        read_while_stalled = metrics.ws_frames
        await sending
        answers = [await ws.receive_json(timeout=10) for _ in frames]
    # IN_FLIGHT waiting to be written, one being answered, one read and waiting for room
    assert read_while_stalled <= IN_FLIGHT + 2
    assert [a["seq"] for a in answers] == list(range(1, 41))
    assert sum(a["accepted"] for a in answers) == 40 * 500
