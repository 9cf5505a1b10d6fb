"""``GET /v1/events/stream``: a WebSocket for long-lived producers.

Each message is one batch: a text frame is JSON, a binary frame msgpack (the
same maps as ``POST /v1/events``). Every batch is answered, in order, with the
HTTP result object plus ``seq``, the 1-based number of that message on this
connection, so the producer knows which batches are safe: ``{"seq", "accepted",
"rejected", "duplicates"}``, or ``{"seq", "error", "status"}`` for a batch that
could not be read or kept (the connection stays open).

Backpressure: the reader starts ingesting each batch as it arrives (so the
validation of one overlaps the Redis write of the previous) but keeps at most
``IN_FLIGHT`` batches of a connection in progress; when Redis writes lag, the
reader stops reading, the socket's receive buffer fills and TCP pushes back on
the producer: memory per connection stays bounded.

The auth gate authenticates the handshake (401 before the upgrade). Producers
that must sign their batches cannot use this transport (a signature covers one
HTTP body), so they are refused with 403 before the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from watchfloor.collector.appkeys import CONFIG, INGESTOR, METRICS, SIGNATURES
from watchfloor.collector.errors import SpoolFull
from watchfloor.core.events import MAX_BODY_BYTES, BatchError
from watchfloor.security.auth import get_principal, json_error, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

IN_FLIGHT = 4
"""Batches of one connection being ingested at once; the reader waits beyond that."""

Pending = asyncio.Queue[asyncio.Task[dict[str, Any]] | None]


@requires(Permission.SEND_EVENTS)
async def stream_handler(request: web.Request) -> web.StreamResponse:
    principal = get_principal(request)
    if request.app[SIGNATURES](principal.name) or request.app[CONFIG].collector.require_signature:
        return json_error(403, "signed producers must use POST /v1/events")
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES, heartbeat=30.0)
    await ws.prepare(request)
    pending: Pending = asyncio.Queue(IN_FLIGHT)
    answering = asyncio.create_task(_answer(ws, pending))
    try:
        await _read(request.app, ws, pending)
        await answering
    finally:
        if not answering.done():
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
    return ws


async def _read(app: web.Application, ws: web.WebSocketResponse, pending: Pending) -> None:
    """Start ingesting each batch as it arrives, at most ``IN_FLIGHT`` at a time."""
    seq = 0
    order = asyncio.Lock()  # FIFO: writes happen in the order the batches came in
    async for msg in ws:
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            seq += 1
            app[METRICS].ws_frames += 1
            task = asyncio.create_task(_handle(app, seq, msg.data, order))
            await pending.put(task)  # blocks while writes lag: we stop reading (backpressure)
        elif msg.type == WSMsgType.ERROR:
            logger.info("event stream closed with error error=%s", ws.exception())
            break
    await pending.put(None)


async def _answer(ws: web.WebSocketResponse, pending: Pending) -> None:
    """Send the answers in the order the batches came in."""
    while (task := await pending.get()) is not None:
        answer = await task  # a batch in flight is always finished, even if nobody listens
        if ws.closed:
            continue
        try:
            await ws.send_json(answer)
        except ConnectionError:
            continue


async def _handle(
    app: web.Application, seq: int, data: str | bytes, order: asyncio.Lock
) -> dict[str, Any]:
    metrics = app[METRICS]
    try:
        if isinstance(data, str):
            result = await app[INGESTOR].ingest_body(data.encode(), "json", order)
        else:
            result = await app[INGESTOR].ingest_body(data, "msgpack", order)
    except BatchError as exc:
        metrics.requests[("ws", exc.status)] += 1
        return {"seq": seq, "error": exc.message, "status": exc.status}
    except SpoolFull as exc:
        metrics.requests[("ws", 503)] += 1
        return {"seq": seq, "error": str(exc), "status": 503, "retry_after": exc.retry_after_s}
    except Exception:  # a task boundary: one batch that breaks must not stop later answers
        logger.exception("event stream batch failed seq=%d", seq)
        metrics.requests[("ws", 500)] += 1
        return {"seq": seq, "error": "internal error: the batch was not kept", "status": 500}
    metrics.requests[("ws", 202)] += 1
    return {"seq": seq, **result.to_dict()}
