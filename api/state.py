"""Typed application keys: the shared objects every API handler reaches.

The factory in :mod:`api.app` stores them; handlers read them through
these keys (``request.app[INCIDENTS]``), so no handler builds its own Redis
client, store or runner. Optional parts (the playbook runner, the audit log)
are ``None`` when absent and the handlers that need them answer 503.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.api.counters import ApiMetrics
from watchfloor.api.errors import Unavailable
from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.security.audit import AuditLog
from watchfloor.security.auth import get_principal
from watchfloor.security.tokens import TokenStore

CONFIG: Final = web.AppKey("wf_config", Config)
REDIS: Final = web.AppKey("wf_redis", aioredis.Redis)
INCIDENTS: Final = web.AppKey("wf_incidents", IncidentStore)
TOKEN_STORE: Final = web.AppKey("wf_token_store", TokenStore)
RUNNER: Final = web.AppKey[PlaybookRunner | None]("wf_runner")
"""The playbook runner, or None (the run endpoints answer 503)."""
AUDIT: Final = web.AppKey[AuditLog | None]("wf_audit")
"""The audit log, or None (writes are not audited, the audit endpoints answer 503)."""
METRICS: Final = web.AppKey("wf_metrics", ApiMetrics)
# The live hub's key is ``api.hub.HUB``, next to its class: the hub's module reads the
# board helpers, whose handlers read these keys.


def runner_of(request: web.Request) -> PlaybookRunner:
    runner = request.app.get(RUNNER)
    if runner is None:
        raise Unavailable("playbook runner not available")
    return runner


def audit_of(request: web.Request) -> AuditLog:
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
    audit = request.app.get(AUDIT)
    if audit is None:
        return
    principal = get_principal(request)
    await audit.append(principal.name, principal.role, action, target, outcome, details)
