"""``GET /v1/events/stream``: a WebSocket for long-lived producers.

Each message is one batch: a text frame is JSON, a binary frame msgpack (the
same maps as ``POST /v1/events``). Every batch is answered, in order, with the
HTTP result object plus ``seq``, the 1-based number of that message on this
connection, so the producer knows which batches are safe: ``{"seq", "accepted",
"rejected", "duplicates"}``, or ``{"seq", "error", "status"}`` for a batch that
could not be read or kept (the connection stays open).

Backpressure: a reader task puts messages on a small bounded queue and one
worker ingests them in order. When Redis writes lag, the queue fills, the
reader stops reading, the socket's receive buffer fills and TCP pushes back on
the producer: memory per connection stays bounded by the queue.

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

from collector.appkeys import CONFIG, INGESTOR, METRICS, SIGNATURES
from collector.errors import SpoolFull
from core.events import MAX_BODY_BYTES, BatchError
from security.auth import get_principal, json_error, requires
from security.roles import Permission

logger = logging.getLogger(__name__)

QUEUE_DEPTH = 4
"""Batches read ahead of the one being written, per connection."""


@requires(Permission.SEND_EVENTS)
async def stream_handler(request: web.Request) -> web.StreamResponse:
    principal = get_principal(request)
    if request.app[SIGNATURES](principal.name) or request.app[CONFIG].collector.require_signature:
        return json_error(403, "signed producers must use POST /v1/events")
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES, heartbeat=30.0)
    await ws.prepare(request)
    queue: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue(QUEUE_DEPTH)
    worker = asyncio.create_task(_work(request.app, ws, queue))
    try:
        await _read(ws, queue)
        await worker
    finally:
        if not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    return ws


async def _read(ws: web.WebSocketResponse, queue: asyncio.Queue[tuple[int, Any] | None]) -> None:
    seq = 0
    async for msg in ws:
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            seq += 1
            await queue.put((seq, msg.data))  # blocks while the worker lags: backpressure
        elif msg.type == WSMsgType.ERROR:
            logger.info("event stream closed with error error=%s", ws.exception())
            break
    await queue.put(None)


async def _work(
    app: web.Application, ws: web.WebSocketResponse, queue: asyncio.Queue[tuple[int, Any] | None]
) -> None:
    while (item := await queue.get()) is not None:
        seq, data = item
        answer = await _handle(app, seq, data)
        if ws.closed:
            return
        try:
            await ws.send_json(answer)
        except ConnectionError:
            return


async def _handle(app: web.Application, seq: int, data: str | bytes) -> dict[str, Any]:
    metrics = app[METRICS]
    try:
        if isinstance(data, str):
            result = await app[INGESTOR].ingest_body(data.encode(), "json")
        else:
            result = await app[INGESTOR].ingest_body(data, "msgpack")
    except BatchError as exc:
        metrics.requests[("ws", exc.status)] += 1
        return {"seq": seq, "error": exc.message, "status": exc.status}
    except SpoolFull as exc:
        metrics.requests[("ws", 503)] += 1
        return {"seq": seq, "error": str(exc), "status": 503, "retry_after": exc.retry_after_s}
    metrics.requests[("ws", 202)] += 1
    return {"seq": seq, **result.to_dict()}
