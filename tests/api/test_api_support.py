"""Shared set-up of the monitor API tests: a real API on a real Redis, real tokens.

Not a test module of its own: the ``test_api_*`` modules build their fixture
with :func:`start_api`, which serves ``api.app.create_app`` with a real
``TokenStore`` (one token per role), a real ``AuditLog`` whose signing key is
made in the test's data directory, and (when given) a real playbook runner.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from watchfloor.api.app import create_app
from watchfloor.core.config import ApiConfig, Config, SecurityConfig
from watchfloor.core.incidents import Incident, IncidentStore
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.security.audit import AuditLog, open_audit
from watchfloor.security.roles import ROLES
from watchfloor.security.tokens import TokenStore

ADMIN_BOOTSTRAP = "bootstrap-admin-token-for-tests"


@dataclass
class ApiStack:
    """A served API and what tests need to drive it."""

    url: str
    redis: aioredis.Redis
    incidents: IncidentStore
    token_store: TokenStore
    audit: AuditLog
    session: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)
    runner: Any = None

    def headers(self, role: str | None = None, token: str | None = None) -> dict[str, str]:
        token = token if token is not None else (self.tokens[role] if role else None)
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self,
        method: str,
        path: str,
        role: str | None = "admin",
        *,
        token: str | None = None,
        body: Any = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        """``(status, parsed JSON or text)`` of one request."""
        payload = json.dumps(body).encode() if body is not None else data
        headers = self.headers(role, token)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.url + path, data=payload,
                                        headers=headers) as response:  # fmt: skip
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def fire(self, subject: str = "chat-vip", severity: str = "major", **kw: Any) -> Incident:
        result = await self.incidents.fire(
            kind=kw.pop("kind", "sla"), rule=kw.pop("rule", "sla.breach"), subject=subject,
            severity=severity, title=kw.pop("title", f"SLA breach on {subject}"),
            evidence=kw.pop("evidence", {"waiting": 42}), at=kw.pop("at", 1_700_000_000.0),
            **kw,
        )  # fmt: skip
        return result.incident

    async def start_run(self, incident_id: str, playbook: str = "sla-breach") -> dict[str, Any]:
        return await self.runner.start(playbook, incident_id, actor="setup", role="admin")


def api_config(data_dir: Path, auth_fail_limit: int = 1_000_000, **api: Any) -> Config:
    return Config(
        data_dir=str(data_dir),
        api=dataclasses.replace(ApiConfig(), **api),
        security=SecurityConfig(auth_fail_limit=auth_fail_limit),
    )


async def start_api(
    redis_url: str,
    serve_app: Any,
    data_dir: Path,
    *,
    with_runner: bool = True,
    with_audit: bool = True,
    redis_options: dict[str, Any] | None = None,
    **api: Any,
) -> tuple[ApiStack, aioredis.Redis]:
    """Serve the API; the caller closes ``stack.session`` and the returned client.

    The playbook runner is the real one over the built-in library (its timer
    loop is not started: the tests drive steps through the API). ``api`` may
    hold ``auth_fail_limit`` besides the ``ApiConfig`` fields.
    """
    redis = aioredis.Redis.from_url(redis_url, **(redis_options or {}))
    config = api_config(data_dir, **api)
    incidents = IncidentStore(redis)
    token_store = TokenStore(redis)
    audit = open_audit(config, redis, create_keys=True)
    runner = PlaybookRunner(redis, incidents, audit, Library.load()) if with_runner else None
    app = create_app(config, redis, incidents=incidents, token_store=token_store,
                     runner=runner, audit=audit if with_audit else None,
                     admin_token=ADMIN_BOOTSTRAP)  # fmt: skip
    url = await serve_app(app)
    stack = ApiStack(
        url, redis, incidents, token_store, audit, aiohttp.ClientSession(), runner=runner
    )
    for role in sorted(ROLES):
        stack.tokens[role], _ = await token_store.create(f"t-{role}", role)
    return stack, redis


def api_fixture(**options: Any) -> Any:
    """A module's ``api`` fixture: ``api = api_fixture(live_ping_s=0.3)``."""

    @pytest.fixture
    async def api(redis_url: str, serve_app: Any, data_dir: Path) -> AsyncIterator[ApiStack]:
        stack, redis = await start_api(redis_url, serve_app, data_dir, **options)
        yield stack
        await stack.session.close()
        await redis.aclose()

    return api
