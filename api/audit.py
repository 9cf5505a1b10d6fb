"""Audit endpoints for the security officer: the log tail with filters, and its verification.

``GET /v1/audit?after=SEQ&actor=&action=&limit=`` pages through the records
after ``SEQ`` (``AuditLog.read``), filtering by actor and action server-side;
``next_after`` is the last sequence number examined, so a client can keep
tailing even when a filter matched nothing in a page. ``GET /v1/audit/verify``
re-checks the hash chain of the records in Redis with ``security.audit``'s
pure verifier. Both need ``READ_AUDIT``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from watchfloor.api.inputs import query_int, query_text
from watchfloor.api.state import CONFIG, audit_of
from watchfloor.security.auth import requires
from watchfloor.security.roles import Permission
from watchfloor.security.signer import default_public_keys

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE: Final = 500
MAX_SCAN_PAGES: Final = 20
"""Pages examined per request when a filter is given (bounds the work per call)."""
MAX_SEQ: Final = 2**62


def _matches(record: dict[str, Any], actor: str | None, action: str | None) -> bool:
    if actor is not None and record.get("actor") != actor:
        return False
    if action is None:
        return True
    name = str(record.get("action", ""))
    # "incident" matches every incident.* action; "incident.ack" only itself.
    return name == action or name.startswith(action + ".")


@routes.get("/v1/audit")
@requires(Permission.READ_AUDIT)
async def list_audit(request: web.Request) -> web.Response:
    """``{"records": [...], "next_after": SEQ}`` oldest first after ``after``."""
    audit = audit_of(request)
    after = query_int(request, "after", 0, 0, MAX_SEQ)
    limit = query_int(request, "limit", PAGE, 1, 5000)
    actor = query_text(request, "actor")
    action = query_text(request, "action")
    filtered = actor is not None or action is not None
    records: list[dict[str, Any]] = []
    cursor = after
    for _ in range(MAX_SCAN_PAGES):
        want = PAGE if filtered else min(PAGE, limit - len(records))
        page = await audit.read(after=cursor, limit=want)
        for record in page:
            if len(records) >= limit:
                break
            cursor = max(cursor, int(record.get("seq", cursor)))
            if _matches(record, actor, action):
                records.append(record)
        if not page or len(records) >= limit:
            break
    return web.json_response({"records": records, "next_after": cursor})


@routes.get("/v1/audit/verify")
@requires(Permission.READ_AUDIT)
async def verify_audit(request: web.Request) -> web.Response:
    """Chain and checkpoint verification of the records held in Redis.

    ``{"ok", "from_seq", "verified_upto", "last_checkpoint_seq", "first_bad_seq",
    "reason", "records", "checkpoints"}``, the same walk as ``watchfloor audit
    verify --redis`` (``AuditLog.verify``): a Redis trimmed by
    ``security.audit_redis_keep`` is verified from the checkpoint it was trimmed
    at, not reported as missing its first records. Checkpoints are checked
    against the public keys in ``DATA_DIR/keys`` (or the log's own signer).
    ``problems`` lists what stops the audit task (a fork: ``integrity``; a
    failing witness); an ``integrity`` problem makes ``ok`` false.
    """
    audit = audit_of(request)
    result = await audit.verify(_public_keys(request, audit))
    body = {**result.to_dict(), "problems": await audit.problems()}
    integrity = body["problems"].get("integrity")
    if integrity and body["ok"]:
        # what Redis holds may chain well while it forked from the signed files: not ok
        body.update(ok=False, reason=f"audit halted: {integrity.get('reason', '')}")
    return web.json_response(body)


def _public_keys(request: web.Request, audit: Any) -> list[Any]:
    try:
        keys = list(default_public_keys(request.app[CONFIG].path("keys")).values())
    except (OSError, ValueError) as exc:
        logger.warning("audit public keys unreadable error=%s", exc)
        keys = []
    signer = getattr(audit, "signer", None)
    if not keys and signer is not None:
        keys = [signer.public_key]
    return keys
