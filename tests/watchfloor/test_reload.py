"""`watchfloor reload` against a real `watchfloor up --headless`: a changed rule threshold
and a changed webhook apply without a restart (the next notification goes to the new
receiver, a real aiohttp server on 127.0.0.1), the reload is audited with what changed and
who asked, and a bad rules file is refused with its error while the running settings stay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from watchfloor.core.redis_server import free_port

pytestmark = pytest.mark.slow

RULES = "[leak]\nbulk_records = {bulk}\n"
CONFIG = """\
[monitor]
rules_file = "{rules}"

[api]
stale_after_s = {stale}

[[webhooks]]
name = "default"
kind = "json"
url = "{url}"
"""


def receiver(calls: list[dict[str, Any]]) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app


def write_settings(data_dir: Path, *, url: str, bulk: Any, stale: int = 30) -> None:
    rules = data_dir / "rules.toml"
    rules.write_text(RULES.format(bulk=bulk), encoding="utf-8")
    text = CONFIG.format(rules=rules, url=url, stale=stale)
    (data_dir / "watchfloor.toml").write_text(text, encoding="utf-8")


async def watchfloor(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchfloor", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode()


async def until(predicate: Any, timeout: float, what: str, up: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert up.returncode is None, f"up exited ({up.returncode}) while waiting for {what}"
        try:
            value = await predicate()
        except (aiohttp.ClientError, OSError):
            value = None
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout}s")


class Stack:
    def __init__(self, session: aiohttp.ClientSession, data_dir: Path, api: int, coll: int):
        self.session, self.data_dir = session, data_dir
        self.api, self.collector = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{coll}"

    def token(self, name: str) -> str:
        return (self.data_dir / "tokens" / f"{name}.token").read_text().strip()

    async def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token('admin')}"}
        async with self.session.get(self.api + path, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def export(self, actor: str, records: int) -> float:
        now = time.time()
        event = {"type": "data.access", "ts": now, "source": "crm", "id": uuid.uuid4().hex}
        event.update(actor=actor, action="export", resource="orders", records=records)
        headers = {"Authorization": f"Bearer {self.token('local-producer')}"}
        url = self.collector + "/v1/events"
        async with self.session.post(url, json=[event], headers=headers) as response:
            assert response.status == 202, await response.text()
        return now

    async def leak_of(self, actor: str) -> dict[str, Any] | None:
        incidents = (await self.get("/v1/incidents?state=all"))["incidents"]
        return next((i for i in incidents if i["kind"] == "leak" and i["subject"] == actor), None)

    async def evaluated_past(self, ts: float) -> bool:
        async with self.session.get(self.api + "/healthz") as response:
            watermark = (await response.json()).get("watermark")
        return isinstance(watermark, int | float) and watermark > ts + 2


async def test_reload_applies_a_rule_and_a_webhook_audited_and_refuses_a_bad_file(
    tmp_path: Path, serve_app: Any
) -> None:
    old_calls: list[dict[str, Any]] = []
    new_calls: list[dict[str, Any]] = []
    old_url = await serve_app(receiver(old_calls)) + "/hook"
    new_url = await serve_app(receiver(new_calls)) + "/hook"
    data_dir = tmp_path / "wf"
    data_dir.mkdir(mode=0o700)
    write_settings(data_dir, url=old_url, bulk=1_000_000)
    api_port, collector_port = free_port(), free_port()
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir", str(data_dir),
        "--api-port", str(api_port), "--collector-port", str(collector_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"},
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        stack = Stack(session, data_dir, api_port, collector_port)
        try:
            await _scenario(stack, up, old_calls, new_calls, new_url)
        finally:
            up.send_signal(signal.SIGTERM)
            await asyncio.wait_for(up.wait(), 60)
    assert up.returncode == 0
    assert not (data_dir / "run" / "up.pid").exists()


async def _scenario(
    stack: Stack, up: Any, old_calls: list[Any], new_calls: list[Any], new_url: str
) -> None:
    async def ready() -> bool:
        async with stack.session.get(stack.api + "/healthz") as response:
            return response.status == 200 and (stack.data_dir / "run" / "up.pid").exists()

    await until(ready, 90, "the stack", up)
    # 5 000 exported records are below the running threshold: no incident
    sent = await stack.export("agent-before", 5_000)
    await until(lambda: stack.evaluated_past(sent), 30, "the engine past the export", up)
    assert await stack.leak_of("agent-before") is None

    write_settings(stack.data_dir, url=new_url, bulk=100, stale=45)
    code, out = await watchfloor("reload", "--data-dir", str(stack.data_dir))
    assert code == 0, out
    assert "webhooks: changed default" in out and "rules: leak.bulk_records" in out, out
    assert "needs a restart of `watchfloor up` to apply: api.stale_after_s" in out, out

    await stack.export("agent-after", 5_000)
    leak = await until(lambda: stack.leak_of("agent-after"), 30, "a leak under the new rule", up)

    async def delivered() -> bool:
        return bool(new_calls)

    await until(delivered, 30, "a notification at the new webhook", up)
    assert any(c.get("incident") == leak["id"] for c in new_calls), new_calls
    assert old_calls == []

    records = (await stack.get("/v1/audit?after=0"))["records"]
    reloads = [r for r in records if r["action"] == "config.reloaded"]
    assert len(reloads) == 1 and reloads[0]["outcome"] == "ok", reloads
    assert reloads[0]["actor"].startswith("os:")
    details = reloads[0]["details"]
    assert details["changed"]["webhooks"] == {"changed": ["default"]}
    assert details["changed"]["rules"] == ["leak.bulk_records"]
    assert old_calls == [] and new_url not in json.dumps(reloads[0])  # no secret in the log

    # a bad rules file is refused, named, and the running settings are kept
    (stack.data_dir / "rules.toml").write_text('[leak]\nbulk_records = "lots"\n')
    code, out = await watchfloor("reload", "--data-dir", str(stack.data_dir))
    assert code == 1, out
    assert "reload refused; the running settings are kept" in out and "bulk_records" in out, out
    before = len(new_calls)
    await stack.export("agent-third", 5_000)
    await until(lambda: stack.leak_of("agent-third"), 30, "a leak under the kept rule", up)
    await until(lambda: _more(new_calls, before), 30, "a notification after the refusal", up)
    records = (await stack.get("/v1/audit?after=0"))["records"]
    refused = [r for r in records if r["action"] == "config.reloaded" and r["outcome"] != "ok"]
    assert len(refused) == 1 and "bulk_records" in json.dumps(refused[0]["details"]), refused


async def _more(calls: list[Any], before: int) -> bool:
    return len(calls) > before
