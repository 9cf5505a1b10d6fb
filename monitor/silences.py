"""Silences: who quieted which alerts, why, until when. Stored in Redis, audited.

A silence has matchers (globs on ``rule``, ``kind``, ``subject``), a start and
an expiry, the person who created it and the reason. Matching alerts still
open and update incidents (they stay visible, with ``silenced_by`` evidence),
but nobody is notified. The engine service reloads the active silences every
few seconds (:func:`active_silences`) and hands them to the lifecycle.
Creating or expiring one is appended to the audit log (``silence.create``,
``silence.expire``).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Final

import msgpack

from watchfloor.core import keys
from watchfloor.monitor.lifecycle import Silence

logger = logging.getLogger(__name__)

MATCHER_FIELDS: Final = frozenset({"rule", "kind", "subject"})
MAX_DURATION_S: Final = 7 * 86_400.0


class SilenceError(Exception):
    """A silence request is invalid (bad matchers, duration or reason)."""


def _pack(silence: Silence) -> bytes:
    return msgpack.packb(silence_to_dict(silence), use_bin_type=True)


def silence_to_dict(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "created_by": silence.created_by,
        "reason": silence.reason,
    }


def _unpack(raw: bytes) -> Silence:
    data = msgpack.unpackb(raw, raw=False)
    return Silence(
        data["id"],
        data["matchers"],
        data["starts_at"],
        data["ends_at"],
        data.get("created_by", ""),
        data.get("reason", ""),
    )


def validate(matchers: dict[str, str], duration_s: float, reason: str) -> None:
    unknown = set(matchers) - MATCHER_FIELDS
    if not matchers or unknown:
        raise SilenceError(f"matchers must use only {sorted(MATCHER_FIELDS)}, got {matchers}")
    if any(not isinstance(v, str) or not v for v in matchers.values()):
        raise SilenceError("every matcher must be a non-empty glob")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise SilenceError(f"duration must be between 0 and {MAX_DURATION_S:.0f} seconds")
    if not reason.strip():
        raise SilenceError("a silence needs a reason")


class SilenceStore:
    """Silences in ``keys.SILENCES`` (hash id -> msgpack), audited when an audit log is given."""

    def __init__(self, redis: Any, audit: Any = None) -> None:
        self.redis = redis
        self.audit = audit

    async def create(
        self,
        matchers: dict[str, str],
        duration_s: float,
        *,
        actor: str,
        role: str,
        reason: str,
        starts_at: float | None = None,
    ) -> Silence:
        validate(matchers, duration_s, reason)
        start = time.time() if starts_at is None else starts_at
        silence = Silence(
            f"sil-{secrets.token_hex(4)}",
            dict(matchers),
            start,
            start + duration_s,
            actor,
            reason.strip(),
        )
        await self.redis.hset(keys.SILENCES, silence.id, _pack(silence))
        if self.audit is not None:
            await self.audit.append(
                actor, role, "silence.create", silence.id, details=silence_to_dict(silence)
            )
        logger.info("silence created id=%s by=%s matchers=%s", silence.id, actor, matchers)
        return silence

    async def expire(self, silence_id: str, *, actor: str, role: str) -> bool:
        raw = await self.redis.hget(keys.SILENCES, silence_id)
        if raw is None:
            return False
        old = _unpack(raw)
        ended = Silence(
            old.id,
            old.matchers,
            old.starts_at,
            min(old.ends_at, time.time()),
            old.created_by,
            old.reason,
        )
        await self.redis.hset(keys.SILENCES, silence_id, _pack(ended))
        if self.audit is not None:
            await self.audit.append(actor, role, "silence.expire", silence_id)
        return True

    async def list(self, *, active_at: float | None = None) -> list[Silence]:
        raw = await self.redis.hgetall(keys.SILENCES)
        found = sorted((_unpack(v) for v in raw.values()), key=lambda s: s.starts_at)
        if active_at is None:
            return found
        return [s for s in found if s.ends_at > active_at]

    async def prune(self, before: float) -> int:
        """Delete silences that ended before ``before`` (kept a while for the record)."""
        stale = [s.id for s in await self.list() if s.ends_at < before]
        if stale:
            await self.redis.hdel(keys.SILENCES, *stale)
        return len(stale)


async def active_silences(redis: Any, now: float | None = None) -> list[Silence]:
    """Silences that have not expired (the lifecycle checks the start itself)."""
    return await SilenceStore(redis).list(active_at=time.time() if now is None else now)
