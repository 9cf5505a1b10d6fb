"""Handover endpoints: read the draft report, write notes, sign it, export it, the duty log.

``GET /v1/handover`` the current shift's report (data + Markdown, times in
``site.timezone``); ``GET /v1/handover.md`` the Markdown alone;
``PUT /v1/handover/notes`` ``{"notes"?, "suggestions"?}`` by the outgoing duty
manager (audited ``handover.notes``); ``POST /v1/handover/sign`` by the
incoming duty manager (audited ``handover.sign``; 409 when the author signs);
``GET /v1/handover/log?search=TEXT`` the signed shifts, ``GET
/v1/handover/log/{id}`` one of them with its Markdown.
"""

from __future__ import annotations

import time
from typing import Any, Final

from aiohttp import web

from watchfloor.api.errors import ApiError
from watchfloor.api.inputs import MAX_NOTE, Field, path_id, query_int, query_text, read_fields
from watchfloor.api.state import AUDIT, CONFIG, INCIDENTS, REDIS, audit_write, runner_of
from watchfloor.monitor.silences import active_silences, silence_to_dict
from watchfloor.playbooks import duty_log
from watchfloor.playbooks.handover import collect
from watchfloor.playbooks.handover_markdown import render_markdown
from watchfloor.security.auth import get_principal, requires
from watchfloor.security.roles import Permission

routes = web.RouteTableDef()

MAX_LOG: Final = 500


async def current_report(request: web.Request, now: float) -> dict[str, Any]:
    """The report of the shift running now, with the draft's notes."""
    redis = request.app[REDIS]
    return await collect(
        redis,
        since=await duty_log.shift_start(redis, now),
        now=now,
        incidents=request.app[INCIDENTS],
        runner=runner_of(request),
        audit=request.app.get(AUDIT),
        silences=[silence_to_dict(s) for s in await active_silences(redis, now)],
        draft=await duty_log.read_draft(redis),
    )


@routes.get("/v1/handover")
@requires(Permission.READ_BOARD)
async def get_handover(request: web.Request) -> web.Response:
    report = await current_report(request, time.time())
    zone = request.app[CONFIG].site.zone
    return web.json_response(
        {"report": report, "markdown": render_markdown(report, zone), "timezone": str(zone)}
    )


@routes.get("/v1/handover.md")
@requires(Permission.READ_BOARD)
async def export_handover(request: web.Request) -> web.Response:
    report = await current_report(request, time.time())
    markdown = render_markdown(report, request.app[CONFIG].site.zone)
    return web.Response(text=markdown, content_type="text/markdown", charset="utf-8")


@routes.put("/v1/handover/notes")
@requires(Permission.ACK)
async def write_notes(request: web.Request) -> web.Response:
    values = await read_fields(
        request,
        Field("notes", str, max_len=MAX_NOTE, mask=True),
        Field("suggestions", str, max_len=MAX_NOTE, mask=True),
    )
    if not values:
        raise ApiError("body needs notes or suggestions", 400)
    draft = await duty_log.write_draft(
        request.app[REDIS],
        notes=values.get("notes"),
        suggestions=values.get("suggestions"),
        author=get_principal(request).name,
    )
    await audit_write(request, "handover.notes", "handover")
    return web.json_response(draft)


@routes.post("/v1/handover/sign")
@requires(Permission.ACK)
async def sign_handover(request: web.Request) -> web.Response:
    now, signer = time.time(), get_principal(request).name
    report = await current_report(request, now)
    markdown = render_markdown(
        report, request.app[CONFIG].site.zone, {"signed_by": signer, "signed_at": now}
    )
    try:
        entry = await duty_log.sign(
            request.app[REDIS],
            report=report,
            markdown=markdown,
            signed_by=signer,
            signed_at=now,
            data_dir=request.app[CONFIG].data_path,
        )
    except duty_log.SameDutyManager as exc:
        raise ApiError(str(exc), 409) from None
    await audit_write(request, "handover.sign", entry["id"])
    return web.json_response(entry, status=201)


@routes.get("/v1/handover/log")
@requires(Permission.READ_BOARD)
async def list_log(request: web.Request) -> web.Response:
    """``{"shifts": [...]}`` newest first, without their reports; ``search`` filters them."""
    text = query_text(request, "search", max_len=200) or ""
    limit = query_int(request, "limit", 50, 1, MAX_LOG)
    found = await duty_log.search(request.app[REDIS], text, limit)
    return web.json_response({"shifts": [duty_log.summary(e) for e in found]})


@routes.get("/v1/handover/log/{id}")
@requires(Permission.READ_BOARD)
async def get_log_entry(request: web.Request) -> web.Response:
    shift_id = path_id(request, "id")
    for entry in await duty_log.entries(request.app[REDIS]):
        if entry["id"] == shift_id:
            return web.json_response(entry)
    raise ApiError(f"no shift {shift_id!r} in the duty log", 404)
