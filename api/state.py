"""Typed application keys: the shared objects every API handler reaches.

The factory in :mod:`api.app` stores them; handlers read them through
these keys (``request.app[INCIDENTS]``), so no handler builds its own Redis
client, store or runner. Optional parts (the playbook runner, the audit log)
are ``None`` when absent and the handlers that need them answer 503.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from aiohttp import web

from api.errors import Unavailable
from core.config import Config
from core.incidents import IncidentStore
from security.auth import get_principal
from security.tokens import TokenStore


@dataclass(slots=True)
class ApiMetrics:
    """Counters exposed on ``/metrics`` (one process, no locking needed)."""

    started: float = field(default_factory=time.time)
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    live_resyncs: int = 0
    live_changes: int = 0
    live_snapshots: int = 0

    def count_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1


CONFIG: Final = web.AppKey("wf_config", Config)
REDIS: Final = web.AppKey("wf_redis", aioredis.Redis)
INCIDENTS: Final = web.AppKey("wf_incidents", IncidentStore)
TOKEN_STORE: Final = web.AppKey("wf_token_store", TokenStore)
RUNNER: Final = web.AppKey("wf_runner", object)
"""The ``playbooks.runner.PlaybookRunner``, or None."""
AUDIT: Final = web.AppKey("wf_audit", object)
"""The ``security.audit.AuditLog``, or None."""
METRICS: Final = web.AppKey("wf_metrics", ApiMetrics)
HUB: Final = web.AppKey("wf_live_hub", object)
"""The ``api.live.LiveHub`` fanning the changes stream out to clients."""


def runner_of(request: web.Request) -> Any:
    runner = request.app.get(RUNNER)
    if runner is None:
        raise Unavailable("playbook runner not available")
    return runner


def audit_of(request: web.Request) -> Any:
    audit = request.app.get(AUDIT)
    if audit is None:
        raise Unavailable("audit log not available")
    return audit


async def audit_write(
    request: web.Request,
    action: str,
    target: str,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Audit a write made by the request's principal (no-op without an audit log)."""
    audit: Any = request.app.get(AUDIT)
    if audit is None:
        return
    principal = get_principal(request)
    await audit.append(principal.name, principal.role, action, target, outcome, details)
