"""Shared pieces of the playbook tests: a webhook receiver that checks robot signatures,
an audit recorder, and a poll helper."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

DINGTALK_SECRET = "SECtest-dingtalk-secret"
FEISHU_SECRET = "test-feishu-secret"


class Receiver:
    """An aiohttp app standing in for DingTalk, Feishu, WeCom, Slack and JSON webhooks.

    A request with a bad or missing signature is answered the way the robots do
    (HTTP 200 with an error code) and recorded in ``rejected``.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.fail_next = 0
        self.delay_s = 0.0
        """How long the plain endpoints take to answer (a slow receiver)."""
        self.app = web.Application()
        self.app.router.add_post("/dingtalk", self.dingtalk)
        self.app.router.add_post("/feishu", self.feishu)
        self.app.router.add_post("/{kind}", self.plain)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["kind"] == kind]

    async def _record(self, request: web.Request, kind: str) -> dict[str, Any]:
        entry = {
            "kind": kind,
            "body": json.loads(await request.read()),
            "key": request.headers.get("Idempotency-Key"),
            "query": dict(request.query),
        }
        return entry

    async def dingtalk(self, request: web.Request) -> web.Response:
        entry = await self._record(request, "dingtalk")
        ts, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
        expected = base64.b64encode(
            hmac.new(
                DINGTALK_SECRET.encode(),
                f"{ts}\n{DINGTALK_SECRET}".encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        fresh = ts.isdigit() and abs(int(ts) / 1000 - time.time()) < 3600
        if not (fresh and hmac.compare_digest(sign, expected)):
            self.rejected.append(entry)
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        self.received.append(entry)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def feishu(self, request: web.Request) -> web.Response:
        entry = await self._record(request, "feishu")
        body = entry["body"]
        ts = body.get("timestamp", "")
        key = f"{ts}\n{FEISHU_SECRET}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(body.get("sign", ""), expected):
            self.rejected.append(entry)
            return web.json_response({"code": 19021, "msg": "sign match fail"})
        self.received.append(entry)
        return web.json_response({"code": 0, "msg": "success"})

    async def plain(self, request: web.Request) -> web.Response:
        entry = await self._record(request, request.match_info["kind"])
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.rejected.append(entry)
            return web.Response(status=503, text="busy")
        self.received.append(entry)
        if entry["kind"] == "wecom":
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        return web.json_response({"ok": True})


class RecordingAudit:
    """Stands in for ``security.audit.AuditLog``: keeps what was appended."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def append(
        self,
        actor: str,
        role: str,
        action: str,
        target: str,
        outcome: str = "ok",
        details: dict | None = None,
    ) -> dict:
        record = {
            "seq": len(self.records) + 1,
            "at": time.time(),
            "actor": actor,
            "role": role,
            "action": action,
            "target": target,
            "outcome": outcome,
            "details": details or {},
        }
        self.records.append(record)
        return record

    def actions(self) -> list[str]:
        return [r["action"] for r in self.records]

    async def read(self, after: int = 0, limit: int = 500) -> list[dict]:
        return [r for r in self.records if r["seq"] > after][:limit]


async def wait_for(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 5.0, every: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


def webhooks_toml(base: str) -> str:
    return f"""
[[webhooks]]
name = "duty-group"
kind = "dingtalk"
url = "{base}/dingtalk?access_token=abc"
secret = "{DINGTALK_SECRET}"

[[webhooks]]
name = "security"
kind = "feishu"
url = "{base}/feishu"
secret = "{FEISHU_SECRET}"

[[webhooks]]
name = "management"
kind = "wecom"
url = "{base}/wecom"

[[webhooks]]
name = "tech"
kind = "slack"
url = "{base}/slack"

[[webhooks]]
name = "default"
kind = "json"
url = "{base}/json"
"""
