"""``GET /v1/openapi.json`` of the collector: its routes as an OpenAPI 3.1 document.

The routes come from the running app's router; what each handler takes and
answers comes from :data:`DECLARED` (keyed by the handler's name), whose bodies
are the event contract's structs (``core.events``) and the Alertmanager payload
(``collector.alertmanager``), so the document follows the contract's schema
(types, enums, ranges, lengths) without a copy of it. A route whose handler is
not declared here is still listed (from its docstring), and
tests/collector/test_openapi.py fails until it is declared. Reading the document
needs a producer token (``send_events``), like sending.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from aiohttp import web

from watchfloor.collector.alertmanager import PATH as ALERTMANAGER_PATH
from watchfloor.collector.alertmanager import AlertmanagerPayload, AlertResult
from watchfloor.core.events import MAX_BODY_BYTES, AnyEvent
from watchfloor.core.openapi import JSON, Operation, Reply, document, first_line
from watchfloor.security.auth import PERMISSION_ATTR, PUBLIC_ATTR, requires
from watchfloor.security.roles import Permission

PATH: Final = "/v1/openapi.json"
MSGPACK: Final = "application/msgpack"
TEXT: Final = "text/plain"


class IngestAnswer(msgspec.Struct, kw_only=True):
    """What a producer is told about one batch."""

    accepted: int
    rejected: list[dict[str, Any]]
    """``{"index", "field", "error"}`` of each refused event."""
    duplicates: int


REFUSED: Final = {
    400: Reply("the body could not be read as a batch (not a list, bad JSON...)"),
    413: Reply(f"body larger than {MAX_BODY_BYTES} bytes, or too many events"),
    415: Reply("unsupported Content-Type or Content-Encoding"),
    503: Reply("Redis is unreachable and the spool is full: retry after Retry-After"),
}

DECLARED: Final[dict[str, dict[str, Any]]] = {
    "post_events": {
        "tag": "ingest",
        "body": list[AnyEvent],
        "body_media": (JSON, MSGPACK),
        "replies": {202: Reply("accepted (per-event refusals listed)", IngestAnswer), **REFUSED},
        "description": "A batch of events (JSON or msgpack, optionally gzip). Per event, a "
        "refusal names the index and the field; the valid events are kept. Signed batches "
        "carry X-Watchfloor-Signature.",
    },
    "stream_handler": {
        "tag": "ingest",
        "websocket": True,
        "replies": {101: Reply("switching to the WebSocket: one batch per message")},
        "description": "WebSocket: each message is a batch as for POST /v1/events, each "
        "answered with its result.",
    },
    "post_alertmanager": {
        "tag": "integrations",
        "body": AlertmanagerPayload,
        "replies": {
            202: Reply("every alert kept as a health event", AlertResult),
            400: Reply("alerts refused, each named alerts[i].field (the others kept)", AlertResult),
            **{s: r for s, r in REFUSED.items() if s != 400},
        },
        "description": "Prometheus Alertmanager's webhook (payload version 4): each alert "
        "becomes a health event (firing: down or degraded, resolved: up).",
    },
    "healthz": {
        "tag": "meta",
        "replies": {200: Reply("the collector's state", {"type": "object"})},
    },
    "metrics_handler": {
        "tag": "meta",
        "replies": {200: Reply("Prometheus exposition", {"type": "string"}, TEXT)},
    },
    "get_openapi": {
        "tag": "meta",
        "replies": {200: Reply("this document", {"type": "object"})},
    },
}


def operations(app: web.Application) -> list[Operation]:
    """Every route of ``app`` (HEAD left out: it is GET's twin) as an :class:`Operation`."""
    out = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        handler = route.handler
        name = getattr(handler, "__name__", type(handler).__name__)
        permission = getattr(handler, PERMISSION_ATTR, None)
        public = getattr(handler, PUBLIC_ATTR, False)
        declared = DECLARED.get(name, {})
        out.append(
            Operation(
                method=route.method,
                path=route.resource.canonical,
                name=name,
                summary=first_line(handler.__doc__) or name,
                permission=None if public else str(permission),
                **declared,
            )
        )
    return out


def build(app: web.Application) -> dict[str, Any]:
    from watchfloor.core.events import EVENT_TYPES

    return document(
        "Watchfloor collector",
        "1",
        "Ingest of contact-centre events (" + ", ".join(sorted(EVENT_TYPES)) + ") and of "
        f"Alertmanager's webhook ({ALERTMANAGER_PATH}).",
        operations(app),
    )


@requires(Permission.SEND_EVENTS)
async def get_openapi(request: web.Request) -> web.Response:
    """The collector's OpenAPI 3.1 document."""
    return web.json_response(build(request.app))
