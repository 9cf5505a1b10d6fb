"""POST /v1/events on a real collector app and a real Redis."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import Running, all_events, events_by_shard, pack
from watchfloor.security.tokens import TokenStore

NOW = time.time()
MSGPACK = "application/msgpack"


def heartbeat(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "heartbeat", "ts": NOW + i, "source": "acd-1", **extra}


def contact(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "contact", "ts": NOW, "source": "acd-1", "id": f"c-{i}",
        "contact_id": f"c-{i}", "queue": "presale-chat", "channel": "chat",
        "action": "offered", **extra,
    }  # fmt: skip


def message(**extra: Any) -> dict[str, Any]:
    return {
        "type": "agent.message", "ts": NOW, "source": "chat-gw", "agent_id": "a-7",
        "conversation_id": "cv-1", "channel": "chat", "direction": "to_customer",
        "text": "您好", **extra,
    }  # fmt: skip


async def post(
    running: Running, body: bytes, content_type: str = "application/json", **headers: str
) -> tuple[int, Any]:
    all_headers = {**running.headers, "Content-Type": content_type, **headers}
    url = f"{running.url}/v1/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=all_headers) as r,
    ):
        return r.status, await r.json(content_type=None)


async def test_a_valid_json_batch_is_accepted_and_lands_in_the_stream(collector: Running) -> None:
    batch = [heartbeat(0), contact(1), contact(2)]
    status, answer = await post(collector, json.dumps(batch).encode())
    assert (status, answer) == (202, {"accepted": 3, "rejected": [], "duplicates": 0})
    by_shard = await events_by_shard(collector.redis)  # a heartbeat's subject is its source
    assert sorted([e.type for e in part] for part in by_shard.values()) == [
        ["contact", "contact"],
        ["heartbeat"],
    ]
    [contacts] = [part for part in by_shard.values() if part[0].type == "contact"]
    assert [e.contact_id for e in contacts] == ["c-1", "c-2"]  # in order within the shard


async def test_msgpack_and_gzip_bodies_are_read(collector: Running) -> None:
    status, answer = await post(collector, pack([contact(1)]), "application/msgpack")
    assert (status, answer["accepted"]) == (202, 1)
    body = gzip.compress(json.dumps([contact(2), contact(3)]).encode())
    status, answer = await post(collector, body, **{"Content-Encoding": "gzip"})
    assert (status, answer["accepted"]) == (202, 2)
    assert len(await all_events(collector.redis)) == 3


async def test_bad_events_are_named_by_index_and_field_and_good_ones_kept(
    collector: Running,
) -> None:
    batch = [contact(0), contact(1, channel="fax"), "nope", contact(3, waiting=1), {"ts": 1}]
    status, answer = await post(collector, json.dumps(batch).encode())
    assert status == 202
    assert answer["accepted"] == 2
    rejected = {(r["index"], r["field"]) for r in answer["rejected"]}
    assert rejected == {(1, "channel"), (2, ""), (4, "type")}
    assert all(r["error"] for r in answer["rejected"])


BIG_TEXT = "字" * 20_000


@pytest.mark.parametrize(
    ("name", "body", "headers", "status"),
    [
        ("not json", b"{nope", {}, 400),
        ("empty body", b"", {}, 400),
        ("not a list", b'{"type": "heartbeat"}', {}, 400),
        ("truncated json", json.dumps([contact(1)]).encode()[:-5], {}, 400),
        ("deeply nested json", b"[" * 200_000 + b"]" * 200_000, {}, 400),
        ("truncated msgpack", pack([contact(1)])[:-3], {"Content-Type": MSGPACK}, 400),
        ("msgpack string not UTF-8", b"\x91\xa2\x00\x80", {"Content-Type": MSGPACK}, 400),
        ("bad gzip", b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}, 400),
        ("truncated gzip", gzip.compress(b"[]" * 100)[:-6], {"Content-Encoding": "gzip"}, 400),
        ("unknown encoding", b"[]", {"Content-Encoding": "compress"}, 415),
        ("unknown content type", b"[]", {"Content-Type": "text/csv"}, 415),
        ("body over 1 MiB", b"[" + b" " * (1024 * 1024 + 10) + b"]", {}, 413),
        ("gzip bomb", gzip.compress(b" " * (50 * 1024 * 1024)), {"Content-Encoding": "gzip"}, 413),
        ("over 10 000 events", json.dumps([1] * 10_001).encode(), {}, 413),
    ],
)
async def test_unreadable_or_oversized_bodies_get_a_clear_error(
    collector: Running, name: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    content_type = headers.pop("Content-Type", "application/json")
    got, answer = await post(collector, body, content_type, **headers)
    assert got == status, name
    assert isinstance(answer, dict) and answer["error"], name
    assert await all_events(collector.redis) == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (message(text="x" * (70 * 1024)), ""),
        (message(text="字" * (25 * 1024)), ""),
        (contact(1, queue=BIG_TEXT), "queue"),
        (heartbeat(nested=[[[[[[[]]]]]]] * 3), None),
        (heartbeat(ts="yesterday"), "ts"),
        (contact(1, wait_s="3"), "wait_s"),
        (contact(1, csat=9), "csat"),
        ({"type": "agent.message", "ts": NOW, "source": "s"}, "agent_id"),
    ],
)
async def test_oversized_and_wrongly_typed_events_are_rejected_alone(
    collector: Running, event: dict[str, Any], field: str | None
) -> None:
    status, answer = await post(collector, json.dumps([event, contact(9)]).encode())
    assert status == 202
    if field is None:  # harmless nesting in an unknown field is accepted
        assert answer["accepted"] == 2
        return
    assert answer["accepted"] == 1
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(0, field)]


async def test_a_repeated_id_from_the_same_source_is_dropped_and_counted(
    collector: Running,
) -> None:
    _, first = await post(collector, json.dumps([contact(1), contact(2)]).encode())
    other_source = {**contact(1), "source": "acd-2"}
    batch = [contact(1), contact(3), contact(3), other_source]
    _, second = await post(collector, json.dumps(batch).encode())
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    assert (second["accepted"], second["duplicates"]) == (2, 2)
    assert len(await all_events(collector.redis)) == 4


async def test_missing_wrong_or_unprivileged_tokens_are_refused(
    collector: Running, redis_client: Any
) -> None:
    store = TokenStore(redis_client)
    viewer, _ = await store.create("wall-screen", "viewer")
    producer, _ = await store.create("acd-1", "producer")
    body = json.dumps([heartbeat()]).encode()
    cases = [(None, 401), ("wrong-token", 401), (viewer, 403), (producer, 202)]
    async with aiohttp.ClientSession() as session:
        for token, expected in cases:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            async with session.post(f"{collector.url}/v1/events", data=body, headers=headers) as r:
                assert r.status == expected, token
    assert len(await all_events(collector.redis)) == 1


async def test_health_and_metrics_need_no_token_and_count_what_happened(
    collector: Running,
) -> None:
    await post(collector, json.dumps([contact(1), contact(1), {"type": "x"}]).encode())
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{collector.url}/healthz") as r:
            health = await r.json()
        async with session.get(f"{collector.url}/metrics") as r:
            text = await r.text()
    assert health["redis"] == "up" and health["spool_batches"] == 0
    assert 'watchfloor_collector_events_accepted_total{type="contact"} 1' in text
    assert 'watchfloor_collector_events_duplicate_total{source="acd-1"} 1' in text
    assert 'events_rejected_total{reason="type",type="unknown"} 1' in text
    assert "watchfloor_collector_redis_write_seconds_count 1" in text
    assert "watchfloor_collector_spool_bytes 0" in text
