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

Failed authentications are counted per remote address in this process
(``security.auth_guard``, a 60 s window). Up to ``fail_limit`` in a window each
is answered 401 and audited as ``auth.failed`` (its path cut to 200
characters, control characters escaped); past it the failing requests get 429
with ``Retry-After`` after a short delay, at no Redis or audit cost, and the
window is audited once when it ends (``auth.throttled`` with the counts).
Refused tokens are remembered, so a repeated bad token never reaches Redis;
lookups of unknown tokens share a few slots, so they cannot take the Redis
pool from the requests of valid tokens. Requests with a valid token are never
throttled: on one machine every service shares 127.0.0.1, and a producer
with a wrong token must not lock the console out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from redis.exceptions import RedisError

from watchfloor.security.auth_guard import (
    FailureLedger,
    FailureWindow,
    LaneBusy,
    LookupLane,
    TokenMemory,
    clean_target,
)
from watchfloor.security.outage import REDIS_OUTAGE, OutageLog
from watchfloor.security.roles import Permission, allows
from watchfloor.security.tokens import Principal

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

PERMISSION_ATTR: Final = "__wf_permission__"
PUBLIC_ATTR: Final = "__wf_public__"
PRINCIPAL_KEY: Final = web.RequestKey("principal", Principal)
ADMIN_PRINCIPAL: Final = Principal(name="admin-token", role="admin")
FAIL_WINDOW_S: Final = 60
REFUSED_MEMORY_S: Final = 600.0
"""How long a refused token is answered without Redis (random tokens never become valid)."""
ACCEPTED_MEMORY_S: Final = 3600.0
"""How long an accepted token skips the lookup lane (it is still checked in Redis)."""

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
    fail_window_s: float = FAIL_WINDOW_S,
    lookup_slots: int = 4,
    lookup_wait_s: float = 2.0,
) -> None:
    """Install the gate as ``app``'s outermost middleware (call before the app starts).

    Its summary task (one ``auth.throttled`` record per throttled window) starts
    and stops with the app; at shutdown the open windows are summed up too.
    """
    ledger = FailureLedger(fail_limit, fail_window_s)
    lane = LookupLane(lookup_slots, lookup_wait_s)
    outage = app.setdefault(REDIS_OUTAGE, OutageLog(logger))  # type: ignore[arg-type]
    gate = _Gate(token_store, admin_token or None, audit, fail_delay_s, ledger, lane, outage)
    app.middlewares.insert(0, gate.middleware)
    app.cleanup_ctx.append(gate.summaries)


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
        fail_delay_s: float,
        ledger: FailureLedger,
        lane: LookupLane,
        outage: OutageLog,
    ) -> None:
        self.store = store
        self.admin_token = admin_token.encode() if admin_token else None
        self.audit = audit
        self.fail_delay_s = fail_delay_s
        self.ledger = ledger
        self.lane = lane
        self.outage = outage
        self.refused = TokenMemory(REFUSED_MEMORY_S)
        self.accepted = TokenMemory(ACCEPTED_MEMORY_S)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        unknown_route = request.match_info.http_exception is not None
        is_public, permission = declared(request)
        if is_public and not unknown_route:
            return await handler(request)
        token = _bearer(request)
        try:
            principal = await self.authenticate(token)
        except LaneBusy:
            return json_error(503, "authentication busy, try again", {"Retry-After": "1"})
        except (RedisError, OSError) as exc:
            self.outage.failed(exc, "checking a token")
            return json_error(503, "authentication unavailable, try again")
        if principal is None:
            reason = "missing bearer token" if token is None else "invalid or expired token"
            return await self.refuse(request, reason)
        request[PRINCIPAL_KEY] = principal
        if unknown_route:  # aiohttp's own 404 / 405, now that we know who asks
            return _route_error(request.match_info.http_exception)
        if permission is None:
            logger.error("endpoint declares no permission path=%s", clean_target(request.path))
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
        if token in self.refused:
            return None
        if token in self.accepted:
            principal = await self.store.verify(token)
        else:
            async with self.lane:
                principal = await self.store.verify(token)
        self.outage.ok()
        (self.accepted if principal is not None else self.refused).add(token)
        return principal

    async def refuse(self, request: web.Request, reason: str) -> web.Response:
        """401 and audited up to the limit; past it 429, cheap, summed up when the window ends."""
        address = request.remote or "unknown"
        window = self.ledger.count(address, request.path)
        retry = str(self.ledger.retry_after(window))
        if self.ledger.throttled(window):
            await asyncio.sleep(self.fail_delay_s)
            return json_error(429, "too many failed authentications", {"Retry-After": retry})
        await self._audit_failure(request, address, reason, window.failures)
        return json_error(401, reason, {"WWW-Authenticate": 'Bearer realm="watchfloor"'})

    async def _audit_failure(
        self, request: web.Request, address: str, reason: str, failures: int
    ) -> None:
        target = clean_target(request.path)
        logger.warning("authentication failed address=%s path=%s reason=%s failures=%d",
                       address, target, reason, failures)  # fmt: skip
        details = {"remote": address, "method": clean_target(request.method, 16),
                   "reason": reason, "failures": failures}  # fmt: skip
        await self._append(f"remote:{address}", "auth.failed", target, "denied", details)

    async def summaries(self, app: web.Application) -> AsyncIterator[None]:
        """The app's task that audits each throttled window once, when it ends."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._summarise_forever(stop), name="auth-summaries")
        yield
        stop.set()  # ends between two passes, never cancelled inside an audit write
        await task
        await self._summarise(self.ledger.take_ended(everything=True))

    async def _summarise_forever(self, stop: asyncio.Event) -> None:
        every = min(5.0, self.ledger.window_s / 2)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            self.ledger.expire()
            await self._summarise(self.ledger.take_ended())

    async def _summarise(self, windows: list[FailureWindow]) -> None:
        for window in windows:
            logger.warning("authentication throttled address=%s failures=%d throttled=%d",
                           window.address, window.failures, window.refused)  # fmt: skip
            await self._append(f"remote:{window.address}", "auth.throttled",
                               clean_target(f"remote:{window.address}"), "throttled",
                               window.summary(self.ledger.window_s))  # fmt: skip

    async def _append(
        self, actor: str, action: str, target: str, outcome: str, details: dict[str, Any]
    ) -> None:
        if self.audit is None:
            return
        try:
            await self.audit.append(actor=actor, role="", action=action, target=target,
                                    outcome=outcome, details=details)  # fmt: skip
        except (RedisError, OSError) as exc:
            self.outage.failed(exc, f"auditing {action}")
        except Exception:  # the audit must not turn a 401 into a 500
            logger.exception("could not audit a failed authentication actor=%s", actor)


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
