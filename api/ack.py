"""The acknowledge link a page carries: ``/v1/ack/{token}``, opened from a phone.

``GET`` shows a tiny confirm page (opening a link must not acknowledge: chat apps
and mail scanners fetch links to preview them); ``POST`` (the page's button)
acknowledges through the same incident store as ``POST /v1/incidents/{id}/ack``
and audits ``incident.ack`` with the paged person's name as actor. The token is
the credential (signed, expiring, single use: :mod:`playbooks.ack_links`), so
these routes need no bearer token.
"""

from __future__ import annotations

import functools
import html
import logging
import time

from aiohttp import web

from watchfloor.api.state import AUDIT, CONFIG, INCIDENTS, REDIS
from watchfloor.core.incidents import IncidentConflict, IncidentNotFound
from watchfloor.playbooks.ack_links import (
    AckClaim,
    AckLinkError,
    AckLinkUsed,
    load_ack_key,
    read_token,
    use_once,
)
from watchfloor.security.auth import public

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Watchfloor</title></head><body style="font-family:sans-serif;margin:2em">
{body}</body></html>"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(body=body), status=status, content_type="text/html")


@functools.cache
def _key(data_dir: str) -> bytes:
    return load_ack_key(data_dir)


def _claim(request: web.Request) -> AckClaim:
    key = _key(request.app[CONFIG].data_dir)
    return read_token(key, request.match_info["token"], time.time())


@routes.get("/v1/ack/{token}")
@public
async def confirm_page(request: web.Request) -> web.Response:
    """The confirm page: which incident, as whom, and one button."""
    try:
        claim = _claim(request)
        incident = await request.app[INCIDENTS].get(claim.incident)
    except (AckLinkError, IncidentNotFound) as exc:
        status = 403 if isinstance(exc, AckLinkError) else 404
        return _page(f"<p>{html.escape(str(exc))}</p>", status)
    title = html.escape(f"[{incident.severity}] {incident.title}")
    if incident.state != "open":
        return _page(f"<h2>{title}</h2><p>Already {html.escape(incident.state)}.</p>")
    return _page(
        f"<h2>{title}</h2><p>{html.escape(incident.id)} · {html.escape(incident.subject)}</p>"
        f'<form method="post"><button style="font-size:1.5em;padding:.5em 1em">'
        f"Acknowledge as {html.escape(claim.person)}</button></form>"
    )


@routes.post("/v1/ack/{token}")
@public
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge the link's incident as the link's person, once."""
    now = time.time()
    try:
        claim = _claim(request)
        await use_once(request.app[REDIS], claim, now)
    except AckLinkUsed as exc:
        return _page(f"<p>{html.escape(str(exc))}</p>", 410)
    except AckLinkError as exc:
        return _page(f"<p>{html.escape(str(exc))}</p>", 403)
    try:
        incident = await request.app[INCIDENTS].acknowledge(
            claim.incident, actor=claim.person, note="acknowledged from the page's link"
        )
    except (IncidentConflict, IncidentNotFound) as exc:
        await _audit(request, claim, "conflict", str(exc))
        return _page(f"<p>{html.escape(str(exc))}</p>", 409)
    await _audit(request, claim, "ok", None)
    logger.info("incident acknowledged by link id=%s actor=%s", claim.incident, claim.person)
    title = html.escape(f"[{incident.severity}] {incident.title}")
    return _page(f"<h2>{title}</h2><p>Acknowledged by {html.escape(claim.person)}.</p>")


async def _audit(request: web.Request, claim: AckClaim, outcome: str, error: str | None) -> None:
    audit = request.app.get(AUDIT)
    if audit is None:
        return
    details = {"via": "ack-link", **({"error": error} if error else {})}
    await audit.append(claim.person, claim.role, "incident.ack", claim.incident, outcome, details)
