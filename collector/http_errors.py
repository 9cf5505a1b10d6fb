"""The collector's HTTP refusals as JSON: ``{"error": ...}``, like every other answer.

aiohttp raises its own ``HTTPException`` for what no handler decides (no such
route, wrong method, a GET of the WebSocket route without an upgrade, a body
past the size limit); by default those leave as text/plain. Producers parse
every refusal as JSON, so this middleware (inside the auth gate) rewrites them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from watchfloor.security.auth import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KEPT_HEADERS = ("allow", "retry-after")


@web.middleware
async def json_http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 4xx ``HTTPException`` becomes JSON naming what was wrong; others pass unchanged."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not 400 <= exc.status < 500 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in KEPT_HEADERS}
        return json_error(exc.status, _message(exc), headers)


def _message(exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"method {exc.method} not allowed"
    text = (exc.text or "").removeprefix(f"{exc.status}: ").strip()
    return text[:300] if text else exc.reason.lower()
