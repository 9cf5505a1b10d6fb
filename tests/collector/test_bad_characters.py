"""One bad character refuses one event, never the batch, never the connection."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import Running, all_events
from tests.collector.test_http_ingest import post


def mention(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "social.mention", "ts": time.time(), "source": "weibo", "id": f"m-{i}",
        "platform": "weibo", "topic": "云杉优选", "text": "发货太慢了", **extra,
    }  # fmt: skip


@pytest.mark.parametrize("field", ["text", "topic", "source", "id", "author", "platform"])
async def test_a_lone_surrogate_refuses_its_event_and_keeps_the_batch(
    collector: Running, field: str
) -> None:
    batch = [mention(0), mention(1, **{field: "bad \ud800 char"}), mention(2)]
    body = json.dumps(batch).encode()  # ensure_ascii: the surrogate travels as \ud800
    assert b"\\ud800" in body
    status, answer = await post(collector, body)
    assert status == 202, answer
    assert answer["accepted"] == 2
    [refusal] = answer["rejected"]
    assert (refusal["index"], refusal["field"]) == (1, field)
    assert "surrogate" in refusal["error"]
    assert [e.id for e in await all_events(collector.redis)] == ["m-0", "m-2"]


async def test_the_stream_answers_a_frame_with_a_surrogate_and_goes_on(collector: Running) -> None:
    frames = [
        json.dumps([mention(0, text="\udfff")]),
        json.dumps([mention(1)]),
        json.dumps([mention(2, topic="x\ud83d")]),
        json.dumps([mention(3)]),
    ]
    async with (
        aiohttp.ClientSession(headers=collector.headers) as session,
        session.ws_connect(f"{collector.url}/v1/events/stream") as ws,
    ):
        for frame in frames:
            await ws.send_str(frame)
        answers = [await ws.receive_json(timeout=10) for _ in frames]
    assert [a["seq"] for a in answers] == [1, 2, 3, 4]
    assert [a["accepted"] for a in answers] == [0, 1, 0, 1]
    assert [r["field"] for a in answers for r in a["rejected"]] == ["text", "topic"]


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage"),
        ("gzip", b"[not gzip at all]"),
        ("deflate", b"not deflate"),
        ("deflate", zlib.compress(b"[]")[:-3]),
        ("br", b"\x00\x01"),
        ("gzip, deflate", b"\x1f\x8b"),
        ("zstd", b"(\xb5/\xfd"),
    ],
)
async def test_an_undecodable_content_encoding_is_a_4xx_from_the_service(
    service: Running, encoding: str, body: bytes
) -> None:
    status, answer = await post(service, body, **{"Content-Encoding": encoding})
    assert status in (400, 415), (status, answer)
    assert answer["error"]
