"""Signed producers and encrypted sensitive fields, against real keys on disk."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import StartCollector, all_events, make_config, shard_entries
from watchfloor.core.events import decode_batch
from watchfloor.security.audit import AuditLog
from watchfloor.security.crypto import FieldCipher, decrypt_event, is_encrypted
from watchfloor.security.signing import HEADER, SigningKeys, sign
from watchfloor.security.tokens import TokenStore

NOW = time.time()
BODY = json.dumps([{"type": "heartbeat", "ts": NOW, "source": "acd-1"}]).encode()


async def post(url: str, token: str, body: bytes, **headers: str) -> int:
    all_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/events", data=body, headers={**all_headers, **headers}) as r,
    ):
        return r.status


@pytest.mark.parametrize(
    ("name", "header", "status"),
    [
        ("signed with the current secret", lambda s: sign(BODY, s[1]), 202),
        ("signed with the old secret (rotation)", lambda s: sign(BODY, s[0]), 202),
        ("unsigned", lambda s: None, 401),
        ("signed with an unknown secret", lambda s: sign(BODY, "whsec_other"), 401),
        ("signed too long ago", lambda s: sign(BODY, s[1], t=int(NOW) - 3600), 401),
        ("signature of another body", lambda s: sign(BODY + b" ", s[1]), 401),
        ("garbage header", lambda s: "t=abc,v1=zz", 401),
    ],
)
async def test_a_source_with_signing_secrets_must_sign_its_batches(
    start_collector: StartCollector, redis_url: str, redis_client: Any, data_dir: Path,
    name: str, header: Any, status: int,
) -> None:  # fmt: skip
    secrets = [SigningKeys.add(data_dir, "acd-1"), SigningKeys.add(data_dir, "acd-1")]
    audit = AuditLog(redis_client)
    running = await start_collector(redis_url, audit=audit)
    token, _ = await TokenStore(redis_client).create("acd-1", "producer")
    value = header(secrets)
    extra = {HEADER: value} if value is not None else {}
    assert await post(running.url, token, BODY, **extra) == status, name
    records = await audit.read()
    rejected = [r for r in records if r["action"] == "signature.rejected"]
    assert len(rejected) == (0 if status == 202 else 1), name
    if rejected:
        assert rejected[0]["actor"] == "acd-1"


async def test_require_signature_refuses_producers_without_a_secret(
    start_collector: StartCollector, redis_url: str, redis_client: Any, data_dir: Path
) -> None:
    config = make_config(data_dir, require_signature=True)
    running = await start_collector(redis_url, config=config)
    token, _ = await TokenStore(redis_client).create("crm-log", "producer")
    assert await post(running.url, token, BODY, **{HEADER: sign(BODY, "whsec_x")}) == 401
    assert await all_events(running.redis) == []


async def test_sensitive_fields_are_encrypted_before_they_reach_redis(
    start_collector: StartCollector, redis_url: str, data_dir: Path
) -> None:
    running = await start_collector(redis_url)
    batch = [
        {"type": "agent.message", "ts": NOW, "source": "chat-gw", "id": "m1", "agent_id": "a-7",
         "conversation_id": "cv-1", "channel": "chat", "direction": "to_customer",
         "text": "您的身份证 11010519491231002X 已登记"},
        {"type": "social.mention", "ts": NOW, "source": "weibo", "platform": "weibo",
         "topic": "云杉优选", "text": "发货太慢了", "author": "小王同学"},
    ]  # fmt: skip
    assert await post(running.url, running.token, json.dumps(batch).encode()) == 202
    raws = [fields[b"b"] for _n, _id, fields in await shard_entries(running.redis)]
    raw = b"".join(raws)
    assert b"11010519491231002X" not in raw and "小王同学".encode() not in raw
    message, mention = sorted((e for r in raws for e in decode_batch(r)), key=lambda e: e.type)
    assert is_encrypted(message.text) and is_encrypted(mention.author)
    assert is_encrypted(mention.text)  # a post can quote a customer's mobile
    assert mention.topic == "云杉优选"  # only the listed fields are encrypted
    cipher = FieldCipher.load(data_dir)
    assert decrypt_event(message, cipher).text == batch[0]["text"]
    assert decrypt_event(mention, cipher).author == "小王同学"


async def test_a_secret_added_while_running_is_required_within_seconds(
    start_collector: StartCollector, redis_url: str, redis_client: Any, data_dir: Path
) -> None:
    running = await start_collector(redis_url)
    token, _ = await TokenStore(redis_client).create("acd-1", "producer")
    assert await post(running.url, token, BODY) == 202
    secret = SigningKeys.add(data_dir, "acd-1")
    deadline = time.monotonic() + 5
    while await post(running.url, token, BODY) == 202:
        assert time.monotonic() < deadline, "new secret not picked up"
        await asyncio.sleep(0.2)
    assert await post(running.url, token, BODY, **{HEADER: sign(BODY, secret)}) == 202


async def test_a_signature_nobody_can_check_is_refused_rather_than_ignored(
    collector: Any, redis_client: Any
) -> None:
    token, _ = await TokenStore(redis_client).create("acd-9", "producer")
    assert await post(collector.url, token, BODY) == 202
    assert await post(collector.url, token, BODY, **{HEADER: sign(BODY, "whsec_x")}) == 401
