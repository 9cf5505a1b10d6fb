"""Fixtures of the console tests: a real monitor API on the session Redis, real tokens.

``console_api`` serves ``api.app.create_app`` with a real token store,
incident store, audit log and playbook runner, and gives one token per role.
``wait_until`` polls the Pilot until a condition holds, failing with a message otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.api.app import create_app
from watchfloor.core.config import Config, SecurityConfig
from watchfloor.core.incidents import Incident, IncidentStore
from watchfloor.security.audit import open_audit
from watchfloor.security.tokens import TokenStore

ROLES = ("viewer", "oncall", "duty_manager", "security_officer", "admin")
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``docs/img`` with ``WATCHFLOOR_DOC_SHOTS=1`` (to refresh the
    manual's pictures), else a temp dir, so that a test run leaves the work tree clean."""
    import os

    return DOCS_IMG if os.environ.get("WATCHFLOOR_DOC_SHOTS") == "1" else tmp_path


@dataclass
class ConsoleApi:
    """A served API, its stores, and a token per role."""

    url: str
    redis: aioredis.Redis
    incidents: IncidentStore
    config: Config
    runner: Any = None
    tokens: dict[str, str] = field(default_factory=dict)
    make_app: Callable[[], web.Application] | None = None
    port: int = 0
    site_runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve the API (again, on the same port after :meth:`stop`)."""
        assert self.make_app is not None
        self.site_runner = web.AppRunner(self.make_app(), shutdown_timeout=0.5)
        await self.site_runner.setup()
        site = web.TCPSite(self.site_runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.site_runner is not None:
            await self.site_runner.cleanup()
            self.site_runner = None

    async def fire(self, subject: str = "售前咨询", severity: str = "major",
                   kind: str = "surge", **more: Any) -> Incident:  # fmt: skip
        result = await self.incidents.fire(
            kind=kind, rule=more.pop("rule", f"{kind}.default"), subject=subject,
            severity=severity, title=more.pop("title", f"Surge on {subject}"),
            evidence=more.pop("evidence", {"waiting": 85, "mobile": "138****5678"}),
            at=more.pop("at", None) or __import__("time").time(), **more,
        )  # fmt: skip
        return result.incident

    async def get(self, path: str, role: str = "viewer") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    async def post(self, path: str, body: dict[str, Any], role: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()


def console_for(api: ConsoleApi, role: str, lang: str = "en") -> Any:
    """A console on ``api`` signed in with ``role``'s token, reconnecting quickly."""
    from watchfloor.console.app import ConsoleApp
    from watchfloor.console.client import Backoff

    app = ConsoleApp(api.url, api.tokens[role], lang=lang)
    assert app.feed is not None
    app.feed.backoff = Backoff(0.05, 0.3)
    return app


def _runner(redis: aioredis.Redis, incidents: IncidentStore, audit: Any) -> Any:
    from watchfloor.playbooks.library import Library
    from watchfloor.playbooks.runner import PlaybookRunner

    return PlaybookRunner(redis, incidents, audit, Library.load(), auto_start=False)


@pytest.fixture
async def console_api(redis_url: str, data_dir: Path) -> AsyncIterator[ConsoleApi]:
    redis = aioredis.Redis.from_url(redis_url)
    config = dataclasses.replace(
        Config(data_dir=str(data_dir)), security=SecurityConfig(auth_fail_limit=1_000_000)
    )
    incidents = IncidentStore(redis)
    audit = open_audit(config, redis, create_keys=True)
    runner = _runner(redis, incidents, audit)
    tokens = TokenStore(redis)

    def make_app() -> web.Application:
        return create_app(config, redis, incidents=incidents, token_store=tokens,
                          runner=runner, audit=audit)  # fmt: skip

    api = ConsoleApi("", redis, incidents, config, runner, make_app=make_app)
    await api.start()
    for role in ROLES:
        api.tokens[role], _ = await tokens.create(f"{role.replace('_', '-')}-1", role)
    yield api
    await api.stop()
    await redis.aclose()


async def wait_until(pilot: Any, condition: Callable[[], bool], what: str,
                     timeout: float = 5.0) -> None:  # fmt: skip
    """Let the app run until ``condition()`` holds; fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def offered(pilot: Any, app: Any, action: str, what: str = "") -> None:
    """Wait until the current screen offers ``action`` (the API's permissions arrived)."""
    await wait_until(pilot, lambda: app.screen.check_action(action, ()) is True,
                     what or f"{action} offered")  # fmt: skip


DEMO_QUEUES = (
    ("售前咨询", "chat", 42, 48.0, 3, 17),
    ("售后服务", "chat", 12, 21.0, 5, 14),
    ("phone-vip", "phone", 6, 9.0, 2, 8),
    ("phone-general", "phone", 31, 44.0, 0, 22),
    ("email-general", "email", 120, 5400.0, 4, 6),
    ("退货退款", "chat", 3, 4.0, 6, 5),
)


async def feed_board(api: ConsoleApi, steps: int = 8) -> None:
    """Write queue and health rows as the engine does (``monitor.board.Board.flush``)."""
    import time

    from watchfloor.core.events import Health, Heartbeat, QueueStats
    from watchfloor.monitor.board import Board

    board = Board()
    now = time.time()
    for step in range(steps):
        ts = now - (steps - step) * 10
        for name, channel, waiting, longest, avail, busy in DEMO_QUEUES:
            grow = (step + 1) / steps
            board.observe(QueueStats(
                ts=ts, source="acd-1", queue=name, channel=channel,
                waiting=int(waiting * grow), longest_wait_s=longest * grow,
                agents_available=avail, agents_busy=busy, offered=20, answered=17,
                abandoned=1, answered_in_sla=14, interval_s=10.0,
            ))  # fmt: skip
    for component, status in (("crm", "up"), ("order-api", "degraded"), ("ivr", "up")):
        board.observe(Health(ts=now, source="probe", component=component, status=status))
    board.observe(Heartbeat(ts=now - 200, source="acd-2"))
    board.evaluate(now)
    async with api.redis.pipeline(transaction=True) as pipe:
        board.flush(pipe)
        await pipe.execute()
