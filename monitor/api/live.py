"""``GET /v1/live``: the console's WebSocket — a snapshot, then every change, in order.

One :class:`LiveHub` task tails the changes stream (``XREAD BLOCK``) and fans
each change out, encoded once, to a bounded queue per client. A client whose
queue overflows (a slow or stalled console) has its backlog dropped and is
marked behind: it gets a fresh snapshot (``reason: "resync"``) when it next
takes from its queue, so it never blocks the others and its memory stays
bounded. The stream entry id is the message's ``seq``; a client reconnecting
with ``?after=<seq>`` still in the stream gets ``resume`` and what it missed,
otherwise a snapshot.

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

import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from core import keys
from monitor.api import board
from monitor.api.errors import BadRequest
from monitor.api.state import (
    CONFIG,
    HUB,
    INCIDENTS,
    METRICS,
    REDIS,
    RUNNER,
    TOKEN_STORE,
    ApiMetrics,
)
from monitor.changes import decode_change
from security.auth import ADMIN_PRINCIPAL, get_principal, requires
from security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

Seq = tuple[int, int]
Item = tuple[Seq, str, str] | None
"""``(seq, seq text, encoded message)``, or None: "you fell behind, resynchronise"."""

READ_COUNT: Final = 500
BLOCK_MS: Final = 1000
SNAPSHOT_INCIDENTS: Final = 500
SNAPSHOT_RUNS: Final = 200
CLOSE_REVOKED: Final = 4401
SNAPSHOT_ATTEMPTS: Final = 3
CLIENT_MAX_MSG: Final = 4096
PACE_S: Final = 0.25
PACE_STEP_S: Final = 0.005


def parse_seq(text: str) -> Seq:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; ValueError if malformed."""
    ms, _, n = text.partition("-")
    if not ms.isdigit() or (n and not n.isdigit()) or len(text) > 40:
        raise ValueError(text)
    return int(ms), int(n or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)


class LiveClient:
    """One connected socket's bounded queue and its "behind" mark."""

    def __init__(self, ws: web.WebSocketResponse, maxsize: int) -> None:
        self.ws = ws
        self.maxsize = max(1, maxsize)
        self.queue: asyncio.Queue[Item] = asyncio.Queue(self.maxsize + 1)
        self.behind = False

    def offer(self, item: tuple[Seq, str, str]) -> bool:
        """Queue a change without ever waiting; True when this overflow marked it behind."""
        if self.behind:
            return False
        if self.queue.qsize() >= self.maxsize:
            self.request_resync()
            return True
        self.queue.put_nowait(item)
        return False

    def request_resync(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.behind = True
        self.queue.put_nowait(None)


class LiveHub:
    """The one reader of the changes stream, fanning changes out to every client."""

    def __init__(
        self, redis: aioredis.Redis, metrics: ApiMetrics, stale_after_s: float, live_queue: int
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self.stale_after_s = stale_after_s
        self.clients: set[LiveClient] = set()
        # A read smaller than a client's queue leaves a keeping-up client room to drain
        # between two reads, so only a client that really stalls overflows.
        self.read_count = max(1, min(READ_COUNT, live_queue // 4))

    @property
    def client_count(self) -> int:
        return len(self.clients)

    def register(self, ws: web.WebSocketResponse, maxsize: int) -> LiveClient:
        client = LiveClient(ws, maxsize)
        self.clients.add(client)
        return client

    def unregister(self, client: LiveClient) -> None:
        self.clients.discard(client)

    async def close_all(self) -> None:
        for client in list(self.clients):
            await client.ws.close(code=1001, message=b"server shutting down")

    async def run(self) -> None:
        """Tail the changes stream until cancelled; survive Redis outages.

        When the stream becomes unreadable every client is sent to resync (its
        snapshot fails and its socket closes "try again later", so no console
        shows a frozen board as live); when it is readable again, everyone still
        connected resyncs once more, since changes may have been missed.
        """
        last: str | None = None
        delay = 0.1
        failing = False
        while True:
            try:
                if last is None:
                    last = await tail_id(self.redis)
                reply: Any = await self.redis.xread({keys.CHANGES: last}, count=self.read_count,
                                               block=BLOCK_MS)  # fmt: skip
            except (RedisError, OSError) as exc:
                logger.warning("live: changes stream unreadable, retry_in=%.1fs error=%s",
                               delay, exc)  # fmt: skip
                if not failing:
                    self._resync_everyone()
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if failing:
                logger.info("live: changes stream readable again")
                self._resync_everyone()
                failing, delay = False, 0.1
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    self._fan_out(last, fields)
            if reply:
                await self._pace()

    async def _pace(self) -> None:
        """Let keeping-up clients drain before the next read; resync the ones that took nothing.

        Without this the hub, reading as fast as Redis answers, would overflow even
        healthy clients during a burst. A client more than half full that took
        nothing for ``PACE_S`` is stalled: it is resynchronised at once, so it
        delays the others at most once.
        """
        busy = self._busy()
        if not busy:
            return
        sizes = {c: c.queue.qsize() for c in busy}
        deadline = time.monotonic() + PACE_S
        while busy and time.monotonic() < deadline:
            await asyncio.sleep(PACE_STEP_S)
            busy = self._busy()
        for client in busy:
            if client.queue.qsize() >= sizes.get(client, 0):
                client.request_resync()
                self.metrics.live_resyncs += 1
                logger.info("live: client stalled, resync queued")

    def _busy(self) -> list[LiveClient]:
        return [c for c in self.clients if not c.behind and c.queue.qsize() > c.maxsize // 2]

    def _fan_out(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        try:
            change = decode_change(fields)
            message = self.change_message(entry_id, change)
        except Exception:  # one bad entry must not stop the feed
            logger.exception("live: undecodable change id=%s", entry_id)
            return
        self.metrics.live_changes += 1
        item = (parse_seq(entry_id), entry_id, message)
        for client in list(self.clients):
            if client.offer(item):
                self.metrics.live_resyncs += 1
                logger.info("live: client fell behind, resync queued clients=%d",
                            len(self.clients))  # fmt: skip

    def change_message(self, entry_id: str, change: dict[str, Any]) -> str:
        data = change.get("data")
        if change.get("kind") in ("queue", "health") and isinstance(data, dict):
            data = board.with_freshness(data, time.time(), self.stale_after_s)
        return dumps({"type": "change", "seq": entry_id, "kind": change.get("kind"),
                      "op": change.get("op"), "data": data})  # fmt: skip

    def _resync_everyone(self) -> None:
        for client in list(self.clients):
            if not client.behind:
                client.request_resync()


async def tail_id(redis: aioredis.Redis) -> str:
    """Id of the newest change, ``"0-0"`` when the stream is empty."""
    newest: Any = await redis.xrevrange(keys.CHANGES, count=1)
    return _text(newest[0][0]) if newest else "0-0"


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
        if not first or not parse_seq(_text(first[0][0])) <= parse_seq(after) <= newest:
            return False
        backlog: Any = await redis.xrange(keys.CHANGES, min=f"({after}",
                                     count=self.client.maxsize + 1)  # fmt: skip
        if len(backlog) > self.client.maxsize:
            return False
        await self.ws.send_str(dumps({"type": "resume", "seq": after}))
        self.floor, self.seq = parse_seq(after), after
        hub: LiveHub = self.app[HUB]  # type: ignore[assignment]
        for entry_id, fields in backlog:
            text = _text(entry_id)
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
        """A message from the client: ``ping`` or ``resync``; nothing privileged exists."""
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
    hub: LiveHub = request.app[HUB]  # type: ignore[assignment]
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
