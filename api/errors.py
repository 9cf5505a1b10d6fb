"""Errors of the monitor API and the one middleware that turns them into JSON.

Every failure leaves the API as ``{"error": "..."}`` with a 4xx status, or 503
when Redis or an optional component is unavailable. Bad input is never a 500:
the handlers parse bodies and query strings through :mod:`api.inputs`,
which raises :class:`BadRequest`; the domain errors of the incident store and
the playbook runner are mapped here to 404/409/403/400. Only a real bug gives
a 500, logged with its traceback and without details for the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from watchfloor.core.incidents import IncidentConflict, IncidentError, IncidentNotFound
from watchfloor.playbooks.errors import PlaybookError
from watchfloor.security.outage import REDIS_OUTAGE
from watchfloor.security.tokens import TokenError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Base error of the monitor API: a status and a message for the client."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    status = 503


class UnsupportedEncoding(ApiError):
    """A compressed body: refused unread, and the connection is not kept (its rest is unread)."""

    status = 415


def json_error(status: int, message: str, headers: Any = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _domain_status(exc: Exception) -> int | None:
    """Status for an incident-store, playbook-runner or token error, None if not one."""
    if isinstance(exc, IncidentNotFound):
        return 404
    if isinstance(exc, IncidentConflict):
        return 409
    if isinstance(exc, IncidentError):
        return 400
    if isinstance(exc, PlaybookError | TokenError):
        status = getattr(exc, "status", 400)
        return status if isinstance(status, int) and 400 <= status < 600 else 400
    return None


def _message(exc: Exception) -> str:
    if isinstance(exc, IncidentNotFound):
        return f"incident {exc} not found"
    text = str(exc)
    return text or type(exc).__name__


def _http_message(exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return "request body too large"
    if isinstance(exc, web.HTTPNotFound):
        return "not found"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"method {exc.method} not allowed"
    text = exc.text or ""
    if text and not text.startswith("{") and len(text) < 300:
        return text.removeprefix(f"{exc.status}: ")
    return exc.reason.lower()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: every error becomes ``{"error": ...}`` JSON."""
    try:
        return await handler(request)
    except UnsupportedEncoding as exc:
        response = json_error(exc.status, exc.message)
        response.force_close()
        return response
    except ApiError as exc:
        return json_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return json_error(exc.status, _http_message(exc), headers)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        outage = request.app.get(REDIS_OUTAGE)
        if outage is not None:
            outage.failed(exc, f"answering {request.method} {request.path[:80]}")
        else:
            logger.warning("redis unavailable path=%s error=%s", request.path[:200], exc)
        return json_error(503, "redis unavailable")
    except Exception as exc:
        status = _domain_status(exc)
        if status is not None:
            return json_error(status, _message(exc))
        logger.exception("unexpected error path=%s", request.path)
        return json_error(500, "internal error")
