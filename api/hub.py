"""The live hub: one reader of the changes stream, fanning changes out to bounded client queues.

:class:`LiveHub` tails ``keys.CHANGES`` (``XREAD BLOCK``) and offers each
change, encoded once, to every connected :class:`LiveClient`. Offering never
waits: a client whose queue is full has its backlog dropped and is marked
behind (it will get a fresh snapshot), so a stalled console never blocks the
others and its memory stays bounded. Between two reads the hub lets clients
that keep up drain (:meth:`LiveHub._pace`), so a burst does not overflow
healthy clients; a client that took nothing meanwhile is resynchronised at
once. The WebSocket sessions that consume the queues live in
:mod:`api.live`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Final

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from watchfloor.api import board
from watchfloor.api.counters import ApiMetrics
from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.core.leases import wait_or_stop

logger = logging.getLogger(__name__)

Seq = tuple[int, int]
Item = tuple[Seq, str, str] | None
"""``(seq, seq text, encoded message)``, or None: "you fell behind, resynchronise"."""


READ_COUNT: Final = 500
BLOCK_MS: Final = 1000
PACE_S: Final = 0.25
PACE_STEP_S: Final = 0.005


def parse_seq(text: str) -> Seq:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; ValueError if malformed."""
    ms, _, n = text.partition("-")
    if not ms.isdigit() or (n and not n.isdigit()) or len(text) > 40:
        raise ValueError(text)
    return int(ms), int(n or 0)


def text_of(value: bytes | str) -> str:
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

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tail the changes stream until ``stop`` is set; survive Redis outages.

        It stops between two reads (each blocks at most ``BLOCK_MS``), never by being
        cancelled inside one: redis-py's clean-up of a command cancelled mid-read can wait
        forever, and the API (and with it the whole process) would never finish stopping.

        When the stream becomes unreadable every client is sent to resync (its
        snapshot fails and its socket closes "try again later", so no console
        shows a frozen board as live); when it is readable again, everyone still
        connected resyncs once more, since changes may have been missed.
        """
        stop = stop or asyncio.Event()
        last: str | None = None
        delay = 0.1
        failing = False
        while not stop.is_set():
            try:
                if last is None:
                    last = await tail_id(self.redis)
                reply: Any = await self.redis.xread({keys.CHANGES: last}, count=self.read_count,
                                               block=BLOCK_MS)  # fmt: skip
            except (RedisError, OSError) as exc:
                # Once per outage: every retry would add a line for the same fact.
                log = logger.debug if failing else logger.warning
                log("live: changes stream unreadable, retry_in=%.1fs error=%s", delay, exc)
                if not failing:
                    self._resync_everyone()
                failing = True
                await wait_or_stop(stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            if failing:
                logger.info("live: changes stream readable again")
                self._resync_everyone()
                failing, delay = False, 0.1
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    last = text_of(entry_id)
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
        self.metrics.live_changes += 1
        if not self.clients:
            return  # nobody to tell: skip the decoding and encoding
        try:
            change = decode_change(fields)
            message = self.change_message(entry_id, change)
        except Exception:  # one bad entry must not stop the feed
            logger.exception("live: undecodable change id=%s", entry_id)
            return
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
    return text_of(newest[0][0]) if newest else "0-0"


HUB: Final = web.AppKey("wf_live_hub", LiveHub)
"""The application's one live hub (``create_app`` makes it, a ``cleanup_ctx`` runs it)."""
