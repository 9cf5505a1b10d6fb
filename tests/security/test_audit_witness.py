"""Witnesses receive every signed checkpoint: a webhook and a chat robot over real HTTP,
in order, resumed after a failure, and a failing witness is a /healthz problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.console.i18n import Translator
from watchfloor.console.screens.audit import halted_text
from watchfloor.core import keys
from watchfloor.security.audit import AuditLog, read_problems
from watchfloor.security.audit_witness import read_witness, url_witness
from watchfloor.security.signer import generate_signing_key, load_signer


async def receiver(serve_app: Any, fail: list[bool]) -> tuple[str, list[Any]]:
    bodies: list[Any] = []

    async def post(request: web.Request) -> web.Response:
        if fail[0]:
            return web.Response(status=502)
        bodies.append(await request.json())
        return web.json_response({"errcode": 0})

    app = web.Application()
    app.router.add_post("/hook", post)
    return await serve_app(app) + "/hook", bodies


async def signed_log(redis: aioredis.Redis, data_dir: Path, witnesses: list[Any]) -> AuditLog:
    generate_signing_key(data_dir / "keys")
    return AuditLog(redis, load_signer(data_dir / "keys"), witnesses=witnesses)


async def test_a_webhook_witness_gets_each_checkpoint_once_in_order_after_an_outage(
    redis_client: aioredis.Redis, data_dir: Path, serve_app: Any, tmp_path: Path
):
    fail = [True]
    url, bodies = await receiver(serve_app, fail)
    log = await signed_log(redis_client, data_dir, [url_witness(url, "json")])
    assert log.witnesses is not None
    for _ in range(2):
        await log.append("alice", "duty_manager", "incident.ack", "inc-1")
        await log.checkpoint()
    assert await log.witnesses.send(log.checkpoints) == 0  # the witness is down
    assert "502" in log.witnesses.failing["webhook:json"]
    fail[0] = False
    assert await log.witnesses.send(log.checkpoints) == 2
    assert await log.witnesses.send(log.checkpoints) == 0  # nothing twice
    assert [b["checkpoint"]["size"] for b in bodies] == [1, 2]
    assert bodies[0]["type"] == "watchfloor.audit.checkpoint"
    assert int(await redis_client.hget(keys.AUDIT_WITNESSED, "webhook:json")) == 2
    # what a webhook received, saved as lines, is a witness file verify reads
    saved = tmp_path / "hook.jsonl"
    saved.write_text("".join(__import__("json").dumps(b) + "\n" for b in bodies))
    assert [c["size"] for c in read_witness(saved)] == [1, 2]


async def test_a_chat_robot_witness_message_pasted_into_a_file_is_a_witness(
    redis_client: aioredis.Redis, data_dir: Path, serve_app: Any, tmp_path: Path
):
    url, bodies = await receiver(serve_app, [False])
    log = await signed_log(redis_client, data_dir, [url_witness(url, "dingtalk")])
    await log.append("alice", "duty_manager", "incident.ack", "inc-1")
    checkpoint = await log.checkpoint()
    assert log.witnesses is not None and await log.witnesses.send(log.checkpoints) == 1
    text = bodies[0]["text"]["content"]
    assert bodies[0]["msgtype"] == "text" and text.startswith("Watchfloor audit checkpoint")
    pasted = tmp_path / "from-chat.txt"
    pasted.write_text(text + "\n")
    assert read_witness(pasted) == [checkpoint]


async def test_a_failing_witness_is_listed_as_an_audit_problem(
    redis_client: aioredis.Redis, data_dir: Path, serve_app: Any
):
    url, _ = await receiver(serve_app, [True])
    log = await signed_log(redis_client, data_dir, [url_witness(url, "json")])
    await log.append("alice", "duty_manager", "incident.ack", "inc-1")
    await log._tick(0.0, final=True)
    problems = await read_problems(redis_client)
    assert "answered 502" in problems["witness:webhook:json"]["reason"]
    banner = halted_text({"problems": problems}, Translator("en"))
    assert banner.startswith("AUDIT PROBLEM (witness:webhook:json): witness webhook answered 502")
    halted = halted_text({"problems": {"integrity": {"reason": "fork"}}}, Translator("en"))
    assert halted.startswith("AUDIT HALTED (integrity): fork.")
    assert halted_text({"problems": {}}, Translator("en")) == ""
