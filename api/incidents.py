"""Incident endpoints: list with filters, detail with timeline, ack, resolve, note, manual.

Reads need ``READ_BOARD``; every write needs ``ACK`` and is audited
(``incident.ack``, ``incident.resolve``, ``incident.note``, ``incident.create``)
with the principal from the token. A refused transition (resolving a resolved
incident) is audited with outcome ``conflict`` and answered 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from watchfloor.api.errors import BadRequest
from watchfloor.api.inputs import (
    MAX_NOTE,
    Field,
    path_id,
    query_choice,
    query_int,
    query_text,
    read_fields,
)
from watchfloor.api.state import INCIDENTS, RUNNER, audit_write
from watchfloor.core.events import parse_ts
from watchfloor.core.incidents import KINDS, SEVERITIES, Incident, IncidentConflict
from watchfloor.core.vocabulary import INCIDENT_STATES
from watchfloor.security.auth import get_principal, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

LIST_STATES: Final = (*INCIDENT_STATES, "all")
DEFAULT_LIMIT: Final = 200
MAX_LIMIT: Final = 1000
NOTE: Final = Field("note", str, max_len=MAX_NOTE, mask=True)


@routes.get("/v1/incidents")
@requires(Permission.READ_BOARD)
async def list_incidents(request: web.Request) -> web.Response:
    """``{"incidents": [...]}`` newest first; filters state, kind, severity, subject, limit,
    ``q`` (substring of subject or title, any case), ``since``/``until`` (opened at or after /
    before; Unix seconds or RFC 3339)."""
    state = query_choice(request, "state", LIST_STATES, "open") or "open"
    limit = query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    keep = _list_filter(request)
    fetch = min(limit * 10, 10 * MAX_LIMIT) if keep is not None else limit
    found = await request.app[INCIDENTS].list(state, fetch)
    chosen = [i.to_dict() for i in found if keep is None or keep(i)][:limit]
    return web.json_response({"incidents": chosen})


def _list_filter(request: web.Request) -> Callable[[Incident], bool] | None:
    """The list's filters as one predicate (None: no filter), each checked, 400 naming it."""
    kind = query_choice(request, "kind", KINDS)
    severity = query_choice(request, "severity", SEVERITIES)
    subject = query_text(request, "subject")
    q = query_text(request, "q")
    needle = q.casefold() if q is not None else None
    since, until = _query_time(request, "since"), _query_time(request, "until")
    if since is not None and until is not None and since > until:
        raise BadRequest("query parameter 'until' is before 'since'")
    if all(v is None for v in (kind, severity, subject, needle, since, until)):
        return None

    def keep(i: Incident) -> bool:
        return (
            (kind is None or i.kind == kind)
            and (severity is None or i.severity == severity)
            and (subject is None or i.subject == subject)
            and (needle is None or needle in f"{i.subject}\n{i.title}".casefold())
            and (since is None or i.opened_at >= since)
            and (until is None or i.opened_at < until)
        )

    return keep


def _query_time(request: web.Request, name: str) -> float | None:
    """A time in the query: Unix seconds or RFC 3339; 400 naming the parameter otherwise."""
    text = query_text(request, name, max_len=64)
    if text is None:
        return None
    try:
        return parse_ts(float(text) if _is_number(text) else text)
    except ValueError as exc:
        raise BadRequest(f"query parameter {name!r} {exc}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@routes.get("/v1/incidents/{id}")
@requires(Permission.READ_BOARD)
async def get_incident(request: web.Request) -> web.Response:
    """The incident with its ``timeline`` (opened, updates, acks, notes, steps)."""
    store = request.app[INCIDENTS]
    incident = await store.get(path_id(request, "id"))
    body = incident.to_dict()
    body["timeline"] = await store.timeline(incident.id)
    return web.json_response(body)


Transition = Callable[..., Awaitable[Incident]]


async def _transition(
    request: web.Request,
    action: str,
    method: Transition,
    fields: tuple[Field, ...],
) -> web.Response:
    incident_id = path_id(request, "id")
    values = await read_fields(request, *fields)
    principal = get_principal(request)
    try:
        incident = await method(incident_id, actor=principal.name, note=values.get("note"))
    except IncidentConflict as exc:
        await audit_write(request, action, incident_id, "conflict", {"error": str(exc)})
        raise
    await audit_write(request, action, incident_id, "ok", _note_detail(values))
    logger.info("incident %s id=%s actor=%s", action, incident_id, principal.name)
    return web.json_response(incident.to_dict())


def _note_detail(values: dict[str, Any]) -> dict[str, Any] | None:
    note = values.get("note")
    return {"note": note} if note else None


@routes.post("/v1/incidents/{id}/ack")
@requires(Permission.ACK)
async def ack_incident(request: web.Request) -> web.Response:
    """Acknowledge an open incident; body ``{"note"?}``; 409 unless open."""
    store = request.app[INCIDENTS]
    return await _transition(request, "incident.ack", store.acknowledge, (NOTE,))


@routes.post("/v1/incidents/{id}/resolve")
@requires(Permission.ACK)
async def resolve_incident(request: web.Request) -> web.Response:
    """Resolve an incident; body ``{"note"?}``; 409 if already resolved."""
    store = request.app[INCIDENTS]
    response = await _transition(request, "incident.resolve", store.resolve, (NOTE,))
    runner: Any = request.app.get(RUNNER)
    if runner is not None:
        # The run of a problem a person resolved stops paging people now, not at its
        # next deadline (it stands down when all its incidents are resolved).
        try:
            await runner.on_resolved(path_id(request, "id"))
        except Exception:  # the resolve stands; the run's timers catch up at their next turn
            logger.exception("run stand-down after resolve failed id=%s", path_id(request, "id"))
    return response


@routes.post("/v1/incidents/{id}/note")
@requires(Permission.ACK)
async def note_incident(request: web.Request) -> web.Response:
    """Add a note to the incident's timeline; body ``{"note"}`` (required)."""
    store = request.app[INCIDENTS]
    required = Field("note", str, required=True, max_len=MAX_NOTE, mask=True)
    return await _transition(request, "incident.note", store.add_note, (required,))


@routes.post("/v1/incidents")
@requires(Permission.ACK)
async def create_incident(request: web.Request) -> web.Response:
    """Open a manual incident; body ``{"title", "severity", "subject"}``; 201."""
    values = await read_fields(
        request,
        Field("title", str, required=True, mask=True),
        Field("severity", str, required=True, choices=SEVERITIES),
        Field("subject", str, required=True, mask=True),
    )
    principal = get_principal(request)
    incident = await request.app[INCIDENTS].create_manual(
        title=values["title"],
        severity=values["severity"],
        subject=values["subject"],
        actor=principal.name,
    )
    await audit_write(request, "incident.create", incident.id, "ok",
                      {"title": incident.title, "severity": incident.severity,
                       "subject": incident.subject})  # fmt: skip
    logger.info("manual incident id=%s actor=%s", incident.id, principal.name)
    return web.json_response(incident.to_dict(), status=201)
