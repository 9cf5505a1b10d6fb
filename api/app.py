"""The monitor API's application factory: routes, middlewares, shared objects, the live hub.

``create_app`` wires the endpoint modules onto one aiohttp application: the
security gate (``security.auth``, outermost: 401/403/429 before any handler or
WebSocket upgrade), then the request counter and the JSON error middleware.
Shared objects live under the typed keys of :mod:`api.state`. The
live hub's reader task is owned by a ``cleanup_ctx``, so it starts and stops
with the application; open WebSockets are closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.api import (
    ack,
    audit,
    board,
    controls,
    handover,
    incidents,
    live,
    meta,
    openapi,
    permissions,
    playbooks,
    roster,
    runs,
    tokens,
)
from watchfloor.api.counters import ApiMetrics
from watchfloor.api.errors import error_middleware
from watchfloor.api.hub import HUB, LiveHub
from watchfloor.api.metrics_export import EXPORT, MonitorExport
from watchfloor.api.state import AUDIT, CONFIG, INCIDENTS, METRICS, REDIS, RUNNER, TOKEN_STORE
from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.security.audit import AuditLog
from watchfloor.security.auth import setup_auth
from watchfloor.security.tokens import TokenStore

logger = logging.getLogger(__name__)

ApiTask = Callable[[asyncio.Event], Awaitable[None]]
ROUTE_MODULES = (
    meta, incidents, board, controls, runs, playbooks, audit, tokens, permissions, handover,
    roster, ack, live, openapi,
)  # fmt: skip


def create_app(
    config: Config,
    redis: aioredis.Redis,
    *,
    incidents: IncidentStore | None = None,
    token_store: TokenStore | None = None,
    runner: PlaybookRunner | None = None,
    audit: AuditLog | None = None,
    admin_token: str | None = None,
) -> web.Application:
    """The monitor API application (not started: run it with an ``AppRunner``).

    Without a ``runner`` the run endpoints answer 503; every write is audited
    through ``audit``, and without one the audit endpoints answer 503.
    ``admin_token`` defaults to ``config.security.admin_token``.
    """
    app = web.Application(
        client_max_size=config.api.max_body_bytes,
        middlewares=[meta.metrics_middleware, error_middleware],
        # Bodies reach the handlers as sent: a compressed one is a JSON 415 from
        # api.inputs, never a bare-text 400 from aiohttp's inflater (broken deflate).
        handler_args={"auto_decompress": False},
    )
    app[CONFIG] = config
    app[REDIS] = redis
    app[INCIDENTS] = incidents or IncidentStore(redis, changes_maxlen=config.redis.changes_maxlen)
    app[TOKEN_STORE] = token_store or TokenStore(redis)
    app[RUNNER] = runner
    app[AUDIT] = audit
    app[METRICS] = ApiMetrics()
    app[HUB] = LiveHub(redis, app[METRICS], config.api.stale_after_s, config.api.live_queue)
    app[EXPORT] = MonitorExport(
        app[METRICS], lambda: app[HUB].client_count,
        stale_after_s=config.api.stale_after_s, rules_file=config.monitor.rules_file,
    )  # fmt: skip
    if audit is None:
        logger.warning("monitor API started without an audit log: writes are not audited")
    if admin_token is None and config.security.admin_token is not None:
        admin_token = config.security.admin_token.value
    setup_auth(app, app[TOKEN_STORE], admin_token, audit,
               fail_limit=config.security.auth_fail_limit)  # fmt: skip
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(_live_hub)
    app.on_shutdown.append(_close_sockets)
    return app


HUB_STOP_S = 5.0
"""The hub ends within one blocking read (``hub.BLOCK_MS``); past this it is cancelled."""


async def _live_hub(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app[HUB].run(stop), name="live-hub")
    yield
    stop.set()  # between two reads: never cancelled inside a Redis command
    done, _ = await asyncio.wait({task}, timeout=HUB_STOP_S)
    if not done:  # a read that outlived its block (Redis stalled): the last resort
        logger.warning("live hub still reading after %.0fs; cancelled", HUB_STOP_S)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_sockets(app: web.Application) -> None:
    await app[HUB].close_all()


async def serve(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set, then shut it down cleanly."""
    runner = web.AppRunner(app, shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logger.info("monitor API listening host=%s port=%d", host, port)
        await stop.wait()
    finally:
        await runner.cleanup()
        logger.info("monitor API stopped")


def api_task(config: Config, redis: aioredis.Redis, **options: Any) -> ApiTask:
    """A ``run(stop)`` task serving the API on ``config.api.host:port`` (for ``monitor``/``up``).

    ``options`` are :func:`create_app`'s (``runner``, ``audit``, ``incidents``...).
    """
    app = create_app(config, redis, **options)

    async def run(stop: asyncio.Event) -> None:
        await serve(app, config.api.host, config.api.port, stop)

    return run
