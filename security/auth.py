"""The one authentication and authorisation gate every Watchfloor service uses.

:func:`setup_auth` installs an aiohttp middleware, outermost, that runs before
any handler and before any WebSocket upgrade. Policy, deny by default:

* a handler marked :func:`public` needs no token (``/healthz``, ``/metrics``);
* every other request must carry ``Authorization: Bearer <token>``, checked
  against the :class:`~security.tokens.TokenStore` or, in constant time, the
  bootstrap ``WATCHFLOOR_ADMIN_TOKEN``; failure is 401;
* only then are unknown routes answered (aiohttp's own 404 / 405), so an
  unauthenticated probe cannot map the API;
* the matched handler must declare its permission with :func:`requires`; one
  that declares nothing is refused 403 ("endpoint declares no permission"),
  so a forgotten decorator fails closed;
* the principal's role must hold that permission (``security.roles``) or 403.

Failed authentications are counted per remote address in Redis
(``keys.auth_failures``, a 60 s window). Past ``fail_limit`` in a window the
failing requests get 429 with ``Retry-After``, after a delay. Requests with a
valid token are never throttled: on one machine every service shares
127.0.0.1, and a producer with a wrong token must not lock the console out.
Every failure is audited as ``auth.failed`` when an audit log is given.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from redis.exceptions import RedisError

from core import keys
from security.roles import Permission, allows
from security.tokens import Principal

__all__ = [
    "AuthError",
    "Forbidden",
    "Principal",
    "TokenVerifier",
    "auth_headers",
    "ensure_permission",
    "get_principal",
    "public",
    "requires",
    "setup_auth",
]

logger = logging.getLogger(__name__)

_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""

PERMISSION_ATTR: Final = "__wf_permission__"
PUBLIC_ATTR: Final = "__wf_public__"
PRINCIPAL_KEY: Final = web.RequestKey("principal", Principal)
ADMIN_PRINCIPAL: Final = Principal(name="admin-token", role="admin")
FAIL_WINDOW_S: Final = 60

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H")


class AuditSink(Protocol):
    """What the gate needs of the audit log (``security.audit.AuditLog``)."""

    async def append(
        self,
        actor: str,
        role: str,
        action: str,
        target: str,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...


class TokenVerifier(Protocol):
    """What the gate needs of the token store (a :class:`TokenStore` or a cache in front)."""

    redis: Any

    async def verify(self, token: str) -> Principal | None: ...


class AuthError(Exception):
    """Base error of authentication and authorisation."""


class Forbidden(AuthError):
    """The principal's role does not hold the permission needed."""

    def __init__(self, principal: Principal | None, permission: Permission | None) -> None:
        who = f"role {principal.role!r}" if principal else "anonymous"
        what = permission.value if permission else "this endpoint"
        super().__init__(f"{who} may not {what}")
        self.principal = principal
        self.permission = permission


def requires(permission: Permission) -> Callable[[H], H]:
    """Declare the one permission a handler (function, method or View) needs."""
    if not isinstance(permission, Permission):
        raise TypeError(f"requires() takes a Permission, not {permission!r}")

    def mark(handler: H) -> H:
        setattr(handler, PERMISSION_ATTR, permission)
        return handler

    return mark


def public(handler: H) -> H:
    """Declare that a handler needs no token (health and metrics endpoints only)."""
    setattr(handler, PUBLIC_ATTR, True)
    return handler


def auth_headers(token: str) -> dict[str, str]:
    """Request headers carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def get_principal(request: web.Request) -> Principal:
    """The authenticated principal of ``request`` (raises on a public endpoint)."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is None:
        raise AuthError("request is not authenticated")
    return principal


def ensure_permission(principal: Principal, permission: Permission) -> None:
    """Re-check a permission (privileged WebSocket messages); raises :class:`Forbidden`."""
    if not allows(principal.role, permission):
        raise Forbidden(principal, permission)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def setup_auth(
    app: web.Application,
    token_store: TokenVerifier,
    admin_token: str | None,
    audit: AuditSink | None = None,
    *,
    fail_limit: int = 10,
    fail_delay_s: float = 1.0,
) -> None:
    """Install the gate as ``app``'s outermost middleware (call before the app starts)."""
    gate = _Gate(token_store, admin_token or None, audit, fail_limit, fail_delay_s)
    app.middlewares.insert(0, gate.middleware)


def declared(request: web.Request) -> tuple[bool, Permission | None]:
    """``(is_public, permission)`` the matched handler declares."""
    handler: Any = request.match_info.handler
    if inspect.isclass(handler) and issubclass(handler, web.View):
        handler = getattr(handler, request.method.lower(), None)
    if getattr(handler, PUBLIC_ATTR, False):
        return True, None
    return False, getattr(handler, PERMISSION_ATTR, None)


class _Gate:
    def __init__(
        self,
        store: TokenVerifier,
        admin_token: str | None,
        audit: AuditSink | None,
        fail_limit: int,
        fail_delay_s: float,
    ) -> None:
        self.store = store
        self.admin_token = admin_token.encode() if admin_token else None
        self.audit = audit
        self.fail_limit = max(1, fail_limit)
        self.fail_delay_s = fail_delay_s

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        unknown_route = request.match_info.http_exception is not None
        is_public, permission = declared(request)
        if is_public and not unknown_route:
            return await handler(request)
        token = _bearer(request)
        try:
            principal = await self.authenticate(token)
        except (RedisError, OSError) as exc:
            logger.warning("token check failed: redis unavailable error=%s", exc)
            return json_error(503, "authentication unavailable, try again")
        if principal is None:
            reason = "missing bearer token" if token is None else "invalid or expired token"
            return await self.refuse(request, reason)
        request[PRINCIPAL_KEY] = principal
        if unknown_route:  # aiohttp's own 404 / 405, now that we know who asks
            return _route_error(request.match_info.http_exception)
        if permission is None:
            logger.error("endpoint declares no permission path=%s", request.path)
            return json_error(403, "endpoint declares no permission")
        try:
            ensure_permission(principal, permission)
            return await handler(request)
        except Forbidden as exc:
            return json_error(403, str(exc))

    async def authenticate(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token):
            return ADMIN_PRINCIPAL
        return await self.store.verify(token)

    async def refuse(self, request: web.Request, reason: str) -> web.Response:
        """401, or 429 after a delay once the address is past the limit; always audited."""
        address = request.remote or "unknown"
        failures, ttl = await self._count_failure(address)
        throttled = failures > self.fail_limit
        await self._audit(request, address, reason, failures, throttled)
        if throttled:
            await asyncio.sleep(self.fail_delay_s)
            retry = str(max(1, ttl))
            return json_error(429, "too many failed authentications", {"Retry-After": retry})
        return json_error(401, reason, {"WWW-Authenticate": 'Bearer realm="watchfloor"'})

    async def _count_failure(self, address: str) -> tuple[int, int]:
        """Count one failure of ``address`` in a window that starts with its first failure."""
        key = keys.auth_failures(address)
        try:
            # One script rather than EXPIRE ... NX, which Redis 6.2 does not know.
            count, pttl = await self.store.redis.eval(_COUNT_FAILURE, 1, key, FAIL_WINDOW_S)
        except RedisError as exc:
            logger.warning("auth failure not counted address=%s error=%s", address, exc)
            return 0, FAIL_WINDOW_S
        return int(count), math.ceil(max(int(pttl), 0) / 1000)

    async def _audit(
        self, request: web.Request, address: str, reason: str, failures: int, throttled: bool
    ) -> None:
        logger.warning(
            "authentication failed address=%s path=%s reason=%s failures=%d",
            address, request.path, reason, failures,
        )  # fmt: skip
        if self.audit is None:
            return
        details = {"remote": address, "method": request.method, "reason": reason,
                   "failures": failures}  # fmt: skip
        try:
            await self.audit.append(
                actor=f"remote:{address}",
                role="",
                action="auth.failed",
                target=request.path,
                outcome="throttled" if throttled else "denied",
                details=details,
            )
        except Exception:  # the audit must not turn a 401 into a 500
            logger.exception("could not audit a failed authentication address=%s", address)


def _route_error(exc: web.HTTPException | None) -> web.Response:
    assert exc is not None
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_error(exc.status, exc.reason.lower(), headers)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
