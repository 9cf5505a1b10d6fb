"""``GET /v1/live``: the console's WebSocket — a snapshot, then every change, in order.

The :class:`~api.hub.LiveHub` fans each change out to a bounded queue
per client; a :class:`LiveSession` per socket sends the snapshot (or the
resumed backlog), then what its queue holds, and a fresh snapshot
(``reason: "resync"``) when the hub marked it behind. The stream entry id is
the message's ``seq``; a client reconnecting with ``?after=<seq>`` still in
the stream gets ``resume`` and what it missed, otherwise a snapshot.

Ordering: a client is registered with the hub *before* the snapshot's
position is read, and changes at or before that position are skipped, so no
change is lost between the snapshot and the stream. The token is re-checked
every ping: a revoked token closes the socket (4401) within seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from watchfloor.api import board
from watchfloor.api.errors import BadRequest
from watchfloor.api.hub import HUB, Item, LiveClient, Seq, dumps, parse_seq, tail_id, text_of
from watchfloor.api.state import (
    CONFIG,
    INCIDENTS,
    METRICS,
    REDIS,
    RUNNER,
    TOKEN_STORE,
)
from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.security.auth import ADMIN_PRINCIPAL, get_principal, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

SNAPSHOT_INCIDENTS: Final = 500
SNAPSHOT_RUNS: Final = 200
CLOSE_REVOKED: Final = 4401
SNAPSHOT_ATTEMPTS: Final = 3
CLIENT_MAX_MSG: Final = 4096


async def build_snapshot(app: web.Application, reason: str) -> tuple[str, dict[str, Any]]:
    """``(seq, snapshot message)``; ``seq`` is read before the state it covers."""
    redis = app[REDIS]
    seq = await tail_id(redis)
    stale_after = app[CONFIG].api.stale_after_s
    incidents = await app[INCIDENTS].list("open", SNAPSHOT_INCIDENTS)
    message = {
        "type": "snapshot",
        "seq": seq,
        "reason": reason,
        "at": time.time(),
        "incidents": [i.to_dict() for i in incidents],
        "queues": await board.queue_rows(redis, stale_after),
        "health": await board.health_rows(redis, stale_after),
        "runs": await _runs(app),
        "flags": await board.flag_map(redis),
        "engine": await board.engine_status(redis),
        "stale_after_s": stale_after,
    }
    return seq, message


async def _runs(app: web.Application) -> list[dict[str, Any]]:
    runner: Any = app.get(RUNNER)
    if runner is None:
        return []
    try:
        return list(await runner.list(limit=SNAPSHOT_RUNS))
    except Exception:  # a broken runner must not take the whole board down
        logger.exception("live: runs unavailable for the snapshot")
        return []


class LiveSession:
    """The writer side of one socket: snapshot or resume, then queued changes and pings."""

    def __init__(self, request: web.Request, client: LiveClient, token: str | None) -> None:
        self.request = request
        self.app = request.app
        self.client = client
        self.ws = client.ws
        self.token = token
        self.floor: Seq = (0, 0)
        self.seq = "0-0"

    async def send_snapshot(self, reason: str) -> None:
        self.client.behind = False  # before reading the position: see the module docstring
        for attempt in range(SNAPSHOT_ATTEMPTS):
            try:
                seq, message = await build_snapshot(self.app, reason)
                break
            except (RedisError, OSError):
                # Pooled connections from before a Redis restart each fail once.
                if attempt + 1 == SNAPSHOT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        await self.ws.send_str(dumps(message))
        self.app[METRICS].live_snapshots += 1
        self.floor, self.seq = parse_seq(seq), seq

    async def resume(self, after: str) -> bool:
        """Send ``resume`` and the changes after ``after``; False if a snapshot is needed."""
        redis = self.app[REDIS]
        first: Any = await redis.xrange(keys.CHANGES, count=1)
        newest = parse_seq(await tail_id(redis))
        if not first or not parse_seq(text_of(first[0][0])) <= parse_seq(after) <= newest:
            return False
        backlog: Any = await redis.xrange(keys.CHANGES, min=f"({after}",
                                     count=self.client.maxsize + 1)  # fmt: skip
        if len(backlog) > self.client.maxsize:
            return False
        await self.ws.send_str(dumps({"type": "resume", "seq": after}))
        self.floor, self.seq = parse_seq(after), after
        hub = self.app[HUB]
        for entry_id, fields in backlog:
            text = text_of(entry_id)
            message = hub.change_message(text, decode_change(fields))
            await self.ws.send_str(message)
            self.floor, self.seq = parse_seq(text), text
        return True

    async def run(self, after: str | None) -> None:
        """Feed the socket until it closes; on a Redis outage close it "try again later"."""
        code = WSCloseCode.OK
        try:
            if after is None or not await self.resume(after):
                await self.send_snapshot("initial")
            await self._pump()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            raise  # the peer went away, or the handler is cancelling us
        except (RedisError, OSError) as exc:
            logger.warning("live: redis unavailable, closing the socket error=%s", exc)
            code = WSCloseCode.TRY_AGAIN_LATER
        except Exception:
            logger.exception("live: session failed")
            code = WSCloseCode.INTERNAL_ERROR
        finally:
            if not self.ws.closed:
                await self.ws.close(code=code)

    async def _pump(self) -> None:
        ping_s = self.app[CONFIG].api.live_ping_s
        next_ping = time.monotonic() + ping_s
        while not self.ws.closed:
            wait = next_ping - time.monotonic()
            if wait <= 0:
                if not await self._token_still_valid():
                    await self.ws.close(code=CLOSE_REVOKED, message=b"token revoked")
                    return
                await self.ws.send_str(dumps({"type": "ping", "seq": self.seq,
                                              "at": time.time()}))  # fmt: skip
                next_ping = time.monotonic() + ping_s
                continue
            try:
                item = await asyncio.wait_for(self.client.queue.get(), wait)
            except TimeoutError:
                continue
            await self._deliver(item)

    async def _deliver(self, item: Item) -> None:
        if item is None:
            await self.send_snapshot("resync")
            return
        seq, text, message = item
        if seq <= self.floor:
            return  # already covered by the snapshot or the resumed backlog
        await self.ws.send_str(message)
        self.floor, self.seq = seq, text

    async def _token_still_valid(self) -> bool:
        if get_principal(self.request) == ADMIN_PRINCIPAL or self.token is None:
            return True  # the bootstrap admin token lives in config, not in the store
        try:
            return await self.app[TOKEN_STORE].verify(self.token) is not None
        except RedisError:
            return True  # an outage is not a revocation; the hub resyncs after it

    async def handle(self, msg: Any) -> None:
        """A message from the client: ``ping`` or ``resync``; nothing privileged exists.

        The token is re-checked first, so a revoked one gets nothing more.
        """
        if not await self._token_still_valid():
            await self.ws.close(code=CLOSE_REVOKED, message=b"token revoked")
            return
        if msg.type != WSMsgType.TEXT:
            await self.ws.send_str(dumps({"type": "error", "error": "text JSON messages only"}))
            return
        try:
            kind = json.loads(msg.data).get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "ping":
            await self.ws.send_str(dumps({"type": "pong", "seq": self.seq, "at": time.time()}))
        elif kind == "resync":
            self.client.request_resync()
        else:
            await self.ws.send_str(dumps({"type": "error", "error": "unknown message type; "
                                          "use the REST API for actions"}))  # fmt: skip


def _after(request: web.Request) -> str | None:
    after = request.query.get("after")
    if after is None or after == "":
        return None
    try:
        parse_seq(after)
    except ValueError:
        raise BadRequest(
            "query parameter 'after' must be a change id such as 1700000000000-0"
        ) from None
    return after


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@routes.get("/v1/live")
@requires(Permission.READ_BOARD)
async def live(request: web.Request) -> web.WebSocketResponse:
    after = _after(request)  # a bad parameter is a 400 before the upgrade
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=CLIENT_MAX_MSG)
    await ws.prepare(request)
    client = hub.register(ws, request.app[CONFIG].api.live_queue)
    session = LiveSession(request, client, _bearer(request))
    writer = asyncio.create_task(session.run(after))
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle(msg)
    finally:
        hub.unregister(client)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return ws
