"""Redis Streams transport of event batches, at least once.

Producers append one stream entry per batch (field ``b``: the msgpack batch of
:func:`core.events.encode_batch`), pipelined, with an approximate ``MAXLEN``
cap. The monitor reads through a consumer group: after a restart it first
re-reads its own pending entries, then new ones, and it claims entries left
pending by a dead consumer (``XAUTOCLAIM``) once they have been idle long
enough. Entries are acknowledged only after they were processed, so a consumer
sees each entry at least once and is given the stable entry id to be
idempotent on. Connection failures are retried with bounded, logged backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from watchfloor.core import keys
from watchfloor.core.events import Event, decode_batch, encode_batch

logger = logging.getLogger(__name__)

BATCH_FIELD = b"b"
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class BusError(Exception):
    """Base error of the events bus."""


class BusUnavailable(BusError):
    """Redis could not be reached within the retry budget."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry (one batch) as a consumer sees it."""

    id: str
    events: list[Event]
    deliveries: int = 1
    raw: bytes = b""
    error: str | None = None
    """Why the batch could not be decoded (the entry then holds no events)."""


@dataclass(slots=True)
class Backoff:
    """Exponential backoff between ``initial`` and ``maximum`` seconds."""

    initial: float = 0.05
    maximum: float = 5.0
    current: float = field(default=0.0)

    def next_delay(self) -> float:
        self.current = self.initial if self.current == 0 else min(self.current * 2, self.maximum)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class EventProducer:
    """Appends event batches to the events stream."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        maxlen: int = 200_000,
        retry_for_s: float = 2.0,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.retry_for_s = retry_for_s

    async def publish(self, batches: Sequence[bytes]) -> list[str]:
        """XADD each encoded batch (one pipeline round trip); return the entry ids.

        Retries transient failures for ``retry_for_s`` seconds, then raises
        :class:`BusUnavailable` so the caller can spool the batches.
        """
        if not batches:
            return []
        deadline = time.monotonic() + self.retry_for_s
        backoff = Backoff()
        while True:
            try:
                return await self._xadd_all(batches)
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise BusUnavailable(f"cannot write to Redis: {exc}") from exc
                logger.warning("events publish failed, retrying delay=%.2fs error=%s", delay, exc)
                await asyncio.sleep(delay)

    async def _xadd_all(self, batches: Sequence[bytes]) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for data in batches:
                pipe.xadd(self.stream, {BATCH_FIELD: data}, maxlen=self.maxlen, approximate=True)
            ids = await pipe.execute()
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def publish_events(self, events: Sequence[Event]) -> str:
        """Encode and append one batch of records."""
        return (await self.publish([encode_batch(events)]))[0]


class EventConsumer:
    """Reads event batches through a consumer group (at least once)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        consumer: str,
        stream: str,
        dead_letter: str,
        group: str = keys.EVENTS_GROUP,
        count: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        claim_every_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.consumer = consumer
        self.group = group
        self.stream = stream
        self.dead_letter_stream = dead_letter
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_every_s = claim_every_s
        self._own_pending = True  # after a (re)start, re-read what we had not acked
        self._next_claim = 0.0
        self._backoff = Backoff()

    @property
    def healthy(self) -> bool:
        """False while the consumer is backing off after a failed read (Redis unreachable).

        ``read()`` answers ``[]`` both for an idle stream and after a failure;
        this tells them apart.
        """
        return not self._backoff.current

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing.

        The group starts at ``0`` so batches written before the first monitor
        start are processed too.
        """
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self) -> list[Entry]:
        """The next entries to process: own pending, then claimed, then new.

        Returns ``[]`` after a blocking read with nothing new, and also after a
        connection failure (logged, followed by a backoff sleep), so the caller
        simply loops.
        """
        try:
            entries = await self._read_once()
        except TRANSIENT_ERRORS as exc:
            delay = self._backoff.next_delay()
            logger.warning("events read failed, retrying delay=%.2fs error=%s", delay, exc)
            await asyncio.sleep(delay)
            return []
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            logger.warning("consumer group missing (Redis lost its data?); recreating it")
            await self.ensure_group()
            self._own_pending = True
            return []
        self._backoff.reset()
        return entries

    async def _read_once(self) -> list[Entry]:
        if self._own_pending:
            entries = await self._read_group("0", block=None)
            if entries:
                return await self._with_deliveries(entries)
            self._own_pending = False
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self.claim_every_s
            claimed = await self._claim()
            if claimed:
                return await self._with_deliveries(claimed)
        return await self._read_group(">", block=self.block_ms)

    async def _read_group(self, start: str, block: int | None) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.count, block=block
        )
        if not reply:
            return []
        _, messages = reply[0]
        return [_entry(mid, fields) for mid, fields in messages if fields]

    async def _claim(self) -> list[Entry]:
        reply: Any = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.count
        )
        messages = reply[1] if len(reply) > 1 else []
        entries = [_entry(mid, fields) for mid, fields in messages if fields]
        if entries:
            logger.info("claimed idle entries count=%d consumer=%s", len(entries), self.consumer)
        return entries

    async def _with_deliveries(self, entries: list[Entry]) -> list[Entry]:
        """Fill in how many times each (re-delivered) entry was delivered."""
        pending: Any = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=entries[0].id,
            max=entries[-1].id,
            count=len(entries) * 2 + 10,
        )
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [
            Entry(e.id, e.events, counts.get(e.id, e.deliveries), e.raw, e.error) for e in entries
        ]

    async def ack(self, ids: Sequence[str]) -> None:
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    async def dead_letter(self, entry: Entry, reason: str) -> None:
        """Move an entry that keeps failing to the dead-letter stream, then ack it (one
        transaction: the shard's dead-letter stream shares its hash tag)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.dead_letter_stream,
                {
                    BATCH_FIELD: entry.raw,
                    b"id": entry.id,
                    b"reason": reason[:1000],
                    b"deliveries": str(entry.deliveries),
                },
                maxlen=10_000,
                approximate=True,
            )
            pipe.xack(self.stream, self.group, entry.id)
            await pipe.execute()
        logger.error(
            "entry dead-lettered id=%s deliveries=%d reason=%s", entry.id, entry.deliveries, reason
        )


def _entry(message_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    entry_id = _text(message_id)
    raw = fields.get(BATCH_FIELD, b"")
    try:
        return Entry(entry_id, decode_batch(raw), raw=raw)
    except Exception as exc:  # any malformed payload: reported, never crashes the reader
        return Entry(entry_id, [], raw=raw, error=f"undecodable batch: {exc!r}"[:500])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
