"""Duty controls: set a flag by hand, and create, list and expire silences.

Extensions of the contract for the duty manager's console. Setting a flag
(``PUT /v1/flags/{name}``, audited ``flag.set``) goes through
``playbooks.flags.set_flag``, which writes the flag and its change in one
transaction; silences go through ``monitor.silences.SilenceStore``, which
validates them and audits ``silence.create`` / ``silence.expire`` itself.
Writes need ``ACK``; listing silences needs ``READ_BOARD``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

from aiohttp import web

from watchfloor.api.errors import BadRequest, NotFound
from watchfloor.api.inputs import Field, path_id, read_fields
from watchfloor.api.state import AUDIT, REDIS, audit_write
from watchfloor.monitor.silences import MAX_DURATION_S, SilenceError, SilenceStore, silence_to_dict
from watchfloor.playbooks.flags import set_flag
from watchfloor.security.auth import get_principal, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

FLAG_NAME: Final = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@routes.put("/v1/flags/{name}")
@requires(Permission.ACK)
async def put_flag(request: web.Request) -> web.Response:
    """Set a flag by hand; body ``{"value"}`` (a short string such as ``on``); the flag."""
    name = path_id(request, "name", max_len=64)
    if not FLAG_NAME.match(name):
        raise BadRequest("flag names are lower-case letters, digits and _ . - (max 64)")
    values = await read_fields(request, Field("value", str, required=True, max_len=64))
    principal = get_principal(request)
    flag = await set_flag(request.app[REDIS], name, values["value"], principal.name)
    await audit_write(request, "flag.set", name, "ok", {"value": values["value"]})
    logger.info("flag set name=%s value=%s actor=%s", name, values["value"], principal.name)
    return web.json_response(flag)


MAX_SCHEDULE_AHEAD_S: Final = 30 * 86_400.0
"""How far ahead a maintenance window (a silence starting later) can be scheduled."""


def _silences(request: web.Request) -> SilenceStore:
    return SilenceStore(request.app[REDIS], request.app.get(AUDIT))


@routes.get("/v1/silences")
@requires(Permission.READ_BOARD)
async def list_silences(request: web.Request) -> web.Response:
    """``{"silences": [...]}``: the ones not yet expired (``?all=1``: every one kept)."""
    everything = request.query.get("all") in ("1", "true")
    found = await _silences(request).list(active_at=None if everything else time.time())
    return web.json_response({"silences": [silence_to_dict(s) for s in found]})


@routes.post("/v1/silences")
@requires(Permission.ACK)
async def create_silence(request: web.Request) -> web.Response:
    """Body ``{"matchers": {"rule"?, "kind"?, "subject"?}, "duration_s", "reason",
    "starts_at"?}``; 201. ``starts_at`` (Unix seconds, up to 30 days ahead) schedules a
    maintenance window: it silences nothing before then."""
    now = time.time()
    values = await read_fields(
        request,
        Field("matchers", dict, required=True, max_len=3),
        Field("duration_s", float, required=True, min_value=1, max_value=MAX_DURATION_S),
        Field("reason", str, required=True, max_len=500, mask=True),
        Field("starts_at", float, min_value=now - 60, max_value=now + MAX_SCHEDULE_AHEAD_S),
    )
    principal = get_principal(request)
    starts_at = values.get("starts_at")
    try:
        silence = await _silences(request).create(
            values["matchers"], float(values["duration_s"]), actor=principal.name,
            role=principal.role, reason=values["reason"],
            starts_at=None if starts_at is None else float(starts_at),
        )  # fmt: skip
    except SilenceError as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(silence_to_dict(silence), status=201)


@routes.delete("/v1/silences/{id}")
@requires(Permission.ACK)
async def expire_silence(request: web.Request) -> web.Response:
    """Expire a silence now; 404 if there is none with that id."""
    silence_id = path_id(request, "id", max_len=64)
    principal = get_principal(request)
    if not await _silences(request).expire(silence_id, actor=principal.name, role=principal.role):
        raise NotFound(f"no silence {silence_id!r}")
    return web.json_response({"id": silence_id, "expired": True})
