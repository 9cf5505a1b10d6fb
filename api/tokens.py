"""Token endpoints (admin): create a token (shown once), list them, revoke one by name.

All three need ``MANAGE_TOKENS``; creation and revocation are audited
(``token.create``, ``token.revoke``) without the token itself. Token rules
(name pattern, known role, positive ttl, one live token per name) are
``security.tokens``'s; its errors become 400 / 409 here.
"""

from __future__ import annotations

import logging

from aiohttp import web

from watchfloor.api.errors import ApiError, NotFound
from watchfloor.api.inputs import Field, path_id, read_fields
from watchfloor.api.state import TOKEN_STORE, audit_write
from watchfloor.security.auth import requires
from watchfloor.security.roles import ROLES, Permission
from watchfloor.security.tokens import TokenError

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_TTL_S = 10 * 365 * 86400.0


@routes.post("/v1/tokens")
@requires(Permission.MANAGE_TOKENS)
async def create_token(request: web.Request) -> web.Response:
    """Body ``{"name", "role", "ttl_s"?}`` → 201 ``{"token", "name", "role", ...}``."""
    values = await read_fields(
        request,
        Field("name", str, required=True, max_len=64),
        Field("role", str, required=True, choices=ROLES),
        Field("ttl_s", float, min_value=1, max_value=MAX_TTL_S),
    )
    try:
        token, record = await request.app[TOKEN_STORE].create(
            values["name"], values["role"], values.get("ttl_s")
        )
    except TokenError as exc:
        await audit_write(request, "token.create", values["name"], "refused",
                          {"role": values["role"], "error": str(exc)})  # fmt: skip
        raise ApiError(str(exc), getattr(exc, "status", 400)) from None
    await audit_write(request, "token.create", values["name"], "ok",
                      {"role": values["role"], "ttl_s": values.get("ttl_s"),
                       "id": record.get("id")})  # fmt: skip
    logger.info("token created name=%s role=%s", values["name"], values["role"])
    return web.json_response({**record, "token": token}, status=201)


@routes.get("/v1/tokens")
@requires(Permission.MANAGE_TOKENS)
async def list_tokens(request: web.Request) -> web.Response:
    """``{"tokens": [{"id", "name", "role", "created", "expires", "revoked", "state"}]}``."""
    return web.json_response({"tokens": await request.app[TOKEN_STORE].list()})


@routes.delete("/v1/tokens/{name}")
@requires(Permission.MANAGE_TOKENS)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke the live token called ``name``; 404 if there is none."""
    name = path_id(request, "name", max_len=64)
    if not await request.app[TOKEN_STORE].revoke(name):
        raise NotFound(f"no live token named {name!r}")
    await audit_write(request, "token.revoke", name, "ok")
    logger.info("token revoked name=%s", name)
    return web.json_response({"name": name, "revoked": True})
