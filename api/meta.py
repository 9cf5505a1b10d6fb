"""Service endpoints: ``/healthz`` and ``/metrics`` (no token), ``/v1/whoami``.

``/healthz`` says whether Redis answers and how far behind the engine is
(watermark and lag from ``keys.ENGINE_STATUS``): 200 ``ok`` or ``degraded``
(engine silent or lagging), 503 when Redis is unreachable. ``/metrics`` is
rendered by prometheus_client from the app's own registry (:mod:`api.metrics_export`:
the API's counters, the engine's status, the board, incidents and runs); the
request counter it shows is kept by :func:`metrics_middleware`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgpack
from aiohttp import web
from redis.exceptions import RedisError

from watchfloor.api.board import engine_status
from watchfloor.api.hub import HUB
from watchfloor.api.metrics_export import EXPORT
from watchfloor.api.state import METRICS, REDIS
from watchfloor.api.unplaced import unplaced_problems
from watchfloor.core import keys
from watchfloor.security.audit import read_problems
from watchfloor.security.auth import get_principal, public, requires
from watchfloor.security.roles import Permission, permissions_of

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

ENGINE_SILENT_S: Final = 30.0
"""Engine status older than this (wall clock) makes ``/healthz`` say ``degraded``."""
ENGINE_LAG_S: Final = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].count_request(request.method, route, response.status)
    return response


async def _health(request: web.Request) -> tuple[int, dict[str, Any]]:
    redis = request.app[REDIS]
    try:
        await redis.ping()
        engine = await engine_status(redis)
        supervisor = await _supervisor_status(redis)
    except (RedisError, OSError) as exc:
        return 503, {"status": "down", "redis": "down", "error": str(exc)[:200]}
    problems = _supervisor_problems(supervisor)
    updated = engine.get("updated_at")
    if not isinstance(updated, int | float):
        problems.append("engine has not reported")
    elif time.time() - updated > ENGINE_SILENT_S:
        problems.append(f"engine silent for {time.time() - updated:.0f} s")
    lag = engine.get("lag_s")
    if isinstance(lag, int | float) and lag > ENGINE_LAG_S:
        problems.append(f"engine lag {lag:.0f} s")
    for name, problem in (await read_problems(redis)).items():  # a fork stops the audit
        problems.append(f"audit {name}: {problem.get('reason', '')}"[:300])
    problems += unplaced_problems(engine)
    body = {
        "status": "degraded" if problems else "ok",
        "redis": "up",
        "engine": engine,
        "watermark": engine.get("watermark"),
        "lag_s": lag,
        "problems": problems,
        "live_clients": _hub_clients(request),
        "supervisor": supervisor,
    }
    return 200, body


async def _supervisor_status(redis: Any) -> dict[str, Any]:
    """What ``up``'s supervisor published (``keys.SUPERVISOR``); empty without ``up``."""
    raw = await redis.get(keys.SUPERVISOR)
    try:
        status = msgpack.unpackb(raw, raw=False) if raw else {}
    except (ValueError, msgpack.UnpackException):
        return {}
    return status if isinstance(status, dict) else {}


def _supervisor_problems(status: dict[str, Any]) -> list[str]:
    """One problem per child in a crash loop, with its last output line."""
    problems = []
    for name, child in sorted((status.get("children") or {}).items()):
        if isinstance(child, dict) and child.get("state") == "crash-loop":
            last = (child.get("last_output") or ["(no output)"])[-1]
            problems.append(
                f"{name} crash loop: {child.get('recent_exits')} exits, "
                f"last code {child.get('last_code')}: {str(last)[:200]}"
            )
    return problems


def _hub_clients(request: web.Request) -> int:
    hub = request.app.get(HUB)
    return int(getattr(hub, "client_count", 0))


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    status, body = await _health(request)
    return web.json_response(body, status=status)


@routes.get("/metrics")
@public
async def metrics(request: web.Request) -> web.Response:
    """The API's counters, the engine's status and the board (:mod:`api.metrics_export`)."""
    export = request.app[EXPORT]
    body, content_type = await export.exposition(
        request.app[REDIS], request.headers.get("Accept", "")
    )
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "X-Content-Type-Options": "nosniff"})  # fmt: skip


@routes.get("/v1/whoami")
@requires(Permission.READ_BOARD)
async def whoami(request: web.Request) -> web.Response:
    """``{"name", "role", "permissions": [...]}`` of the token used."""
    principal = get_principal(request)
    permissions = sorted(p.value for p in permissions_of(principal.role))
    return web.json_response({"name": principal.name, "role": principal.role,
                              "permissions": permissions})  # fmt: skip
