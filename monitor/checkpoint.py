"""Exactly once across restarts: the checkpoint transaction and idempotent actions.

The monitor's story rests on one ``MULTI`` per events shard: the shard engine's
whole state (detector windows, reorder buffer, lifecycle), the last processed
stream id, the ids of entries still failing, the shard's status and the
``XACK`` of every entry folded into that state are written together, under the
worker's lease of the shard. Either
all of it lands or none does, so a restarted monitor starts from a state that
has seen exactly the acknowledged entries, and re-reads the others.

Re-reading replays the lifecycle actions of those entries too, so
:class:`ActionApplier` applies them idempotently: per fingerprint it remembers
(in ``keys.ENGINE_APPLIED``, per shard) the last evaluation second (and rank within it)
it applied, and the incident store dedupes fires on the same key. No incident
is opened twice, no count goes up twice.

The follow-up work of an incident write (its ``incident.opened`` audit record,
the playbook hook) is an outbox entry written in the incident's own
transaction: done right after, deleted when done, and replayed at start
(:meth:`ActionApplier.replay_outbox`) after a crash in between. The hook is
idempotent (one run per incident) and a replayed audit record is written only
if the log does not have it yet.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import msgpack

from watchfloor.core import faults, keys
from watchfloor.core.changes import add_change
from watchfloor.core.incidents import (
    FireResult,
    Incident,
    IncidentConflict,
    IncidentNotFound,
    IncidentStore,
)
from watchfloor.core.leases import held_in
from watchfloor.core.redis_tx import transact
from watchfloor.monitor.global_cap import GlobalCap
from watchfloor.monitor.lifecycle import Action

logger = logging.getLogger(__name__)

IncidentHook = Callable[[Incident, bool, bool], Awaitable[None]]
ResolvedHook = Callable[[str], Awaitable[Any]]
AUDIT_LOOKBACK: Final = 2_000
"""Audit records searched for a replayed outbox entry's record (written before a crash)."""
COMPRESS_ABOVE: Final = 64 * 1024
_ZLIB: Final = b"z"
_PLAIN: Final = b"m"
_HDEL_IF: Final = (
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
    "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0"
)


@dataclass(slots=True)
class Checkpoint:
    """What a monitor resumes from."""

    engine: dict[str, Any] | None = None
    last_id: str = "0-0"
    failed: dict[str, int] = field(default_factory=dict)
    """Entry id -> failed attempts, for entries left pending to be retried."""
    counters: dict[str, int] = field(default_factory=dict)
    """``batches``, ``dead_letters``: service counters that survive a restart."""


def encode(checkpoint: Checkpoint) -> bytes:
    body = msgpack.packb(
        {
            "engine": checkpoint.engine,
            "last_id": checkpoint.last_id,
            "failed": checkpoint.failed,
            "counters": checkpoint.counters,
        },
        use_bin_type=True,
    )
    if len(body) > COMPRESS_ABOVE:
        return _ZLIB + zlib.compress(body, 1)
    return _PLAIN + body


def decode(raw: bytes) -> Checkpoint:
    body = zlib.decompress(raw[1:]) if raw[:1] == _ZLIB else raw[1:]
    data = msgpack.unpackb(body, raw=False, strict_map_key=False)
    return Checkpoint(
        data.get("engine"),
        data.get("last_id", "0-0"),
        dict(data.get("failed", {})),
        dict(data.get("counters", {})),
    )


async def load(redis: Any, shard: int) -> Checkpoint:
    raw = await redis.get(keys.engine_checkpoint(shard))
    if raw is None:
        return Checkpoint()
    return decode(raw)


async def commit(
    redis: Any,
    checkpoint: Checkpoint,
    *,
    shard: int,
    status: Mapping[str, Any],
    owner: str | None = None,
    ack: Sequence[str] = (),
    group: str = keys.EVENTS_GROUP,
    board: Any = None,
    status_change: bool = False,
    changes_maxlen: int = 100_000,
    reopen_seen: Mapping[str, str] | None = None,
) -> None:
    """Write shard ``shard``'s state, status and the acks of ``ack`` in one transaction.

    That transaction holds only the shard's keys (one hash slot of a cluster). When
    ``owner`` is given it commits only while ``owner`` still holds the shard's lease
    (watched and checked in the same transaction), else it raises
    :class:`~core.leases.LeaseLost` and writes nothing: a worker that lost its shard
    can never overwrite the new holder's state. Before it, in a transaction of their
    own (the control plane's slot), go the changed board rows, the status change and
    ``reopen_seen`` (fingerprint -> ``incident_id|resolved_at``): the hand resolutions
    this state has taken in (:meth:`~monitor.lifecycle.Lifecycle.resolved_by_hand`),
    dropped from ``keys.INCIDENT_REOPEN`` unless a newer one replaced them. Both are
    idempotent (rows are snapshots), so a crash between the two loses nothing.
    """
    if board is not None or status_change or reopen_seen:
        async with redis.pipeline(transaction=True) as pipe:
            if board is not None:
                board.flush(pipe, changes_maxlen)
            if status_change:
                add_change(pipe, "engine", "status", {"shard": shard, **status}, changes_maxlen)
            for fingerprint, mark in (reopen_seen or {}).items():
                pipe.eval(_HDEL_IF, 1, keys.INCIDENT_REOPEN, fingerprint, mark)
            if len(pipe):
                await pipe.execute()

    def queue(pipe: Any) -> None:
        pipe.set(keys.engine_checkpoint(shard), encode(checkpoint))
        pipe.hset(keys.engine_status(shard), mapping={k: _plain(v) for k, v in status.items()})
        if ack:
            pipe.xack(keys.events_shard(shard), group, *ack)

    if owner is None:
        async with redis.pipeline(transaction=True) as pipe:
            queue(pipe)
            await pipe.execute()
        return
    lease = keys.shard_lease(shard)

    async def fenced(pipe: Any) -> None:
        await held_in(pipe, lease, owner)
        pipe.multi()
        queue(pipe)

    await transact(redis, [lease], fenced)


def compare_ids(a: str, b: str) -> int:
    """-1, 0 or 1 as stream id ``a`` is before, equal to or after ``b``."""
    ta = tuple(int(p) for p in a.split("-", 1))
    tb = tuple(int(p) for p in b.split("-", 1))
    return (ta > tb) - (ta < tb)


def _plain(value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return "" if value is None else str(value)


class ActionApplier:
    """Applies lifecycle actions to the incident store, idempotently."""

    def __init__(
        self,
        store: IncidentStore,
        *,
        on_incident: IncidentHook | None = None,
        audit: Any = None,
        shard: int = 0,
        cap_per_minute: int = 0,
    ) -> None:
        self.store = store
        self.cap = GlobalCap(store.redis, store, cap_per_minute) if cap_per_minute else None
        """The per-rule cap across shards (None: the lifecycle's own is the only one)."""
        self.shard = shard
        """Applied marks are kept per shard: two shards may judge one fingerprint."""
        self.redis = store.redis
        self.on_incident = on_incident
        self.audit = audit
        self.created: list[str] = []
        """Ids of incidents this applier opened (replay writes them out)."""
        self.on_resolved: ResolvedHook | None = None
        """Awaited with an incident's id when the engine resolved it (its run may stand down)."""

    async def apply(self, actions: Sequence[Action]) -> None:
        """Apply in order; an action already applied before a restart is skipped.

        An action's mark is (evaluation time in ms, 0 for an early fire and 1
        for an evaluation's action, rank within them): early fires for an
        evaluation come before it, possibly in another batch, and must not
        hide its actions.
        """
        seen: dict[tuple[str, int, int], int] = {}
        for action in actions:
            fp = action.signal.fingerprint
            at_ms, phase = round(action.at * 1000), 0 if action.early else 1
            rank = seen.get((fp, at_ms, phase), 0)
            seen[(fp, at_ms, phase)] = rank + 1
            mark = (at_ms, phase, rank)
            if await self._already_applied(fp, mark):
                continue
            if action.op == "fire":
                rolled = await self.cap.divert(action) if self.cap else None
                if rolled is None:
                    await self.fire(action, dedupe_key=f"t:{at_ms}:{phase}:{rank}")
                else:
                    subject = action.signal.subject
                    await self.fire(rolled, dedupe_key=f"c:{subject}:{at_ms}:{phase}:{rank}")
            elif action.op == "clear":
                if not (self.cap and await self.cap.cleared(action)):
                    await self._clear(action)
            else:
                await self._note(action)
            # Remembered right after the write: only a crash in between these two
            # round trips could apply one action twice.
            await self.redis.hset(keys.ENGINE_APPLIED, self._mark_key(fp), ":".join(map(str, mark)))

    def _mark_key(self, fp: str) -> str:
        return f"{self.shard}|{fp}"

    async def _already_applied(self, fp: str, mark: tuple[int, int, int]) -> bool:
        last = await self.redis.hget(keys.ENGINE_APPLIED, self._mark_key(fp))
        if last is None:
            return False
        parts = [int(p) for p in cast(bytes, last).decode().split(":")]
        if len(parts) == 2:  # written before early fires: whole seconds, evaluations only
            parts = [parts[0] * 1000, 1, parts[1]]
        return tuple(parts) >= mark

    async def fire(self, action: Action, *, dedupe_key: str) -> FireResult:
        """Open or update the incident of ``action``; tell the hook when people must know."""
        sig = action.signal
        result = await self.store.fire(
            kind=sig.kind,
            rule=sig.rule,
            subject=sig.subject,
            severity=sig.severity,
            title=sig.title,
            evidence=sig.evidence,
            at=action.at if action.first_at is None else action.first_at,
            tenant=sig.tenant,
            dedupe_key=dedupe_key,
            followup=self._followup(action),
            reopened_from=sig.evidence.get("reopened_from"),
        )
        faults.point("after_incident_write")
        if result.created:
            self.created.append(result.incident.id)
            logger.info(
                "incident opened id=%s rule=%s subject=%s severity=%s notify=%s",
                result.incident.id,
                sig.rule,
                sig.subject,
                sig.severity,
                action.notify,
            )
        if result.outbox is not None:
            await self._follow_up(result.outbox)
        return result

    @staticmethod
    def _followup(action: Action) -> dict[str, Any]:
        """What must happen once the incident of ``action`` opens or gets worse."""
        work = {"notify": action.notify, "audit": action.signal.kind == "leak"}
        return {name: True for name, wanted in work.items() if wanted}

    async def replay_outbox(self, owns: Callable[[str | None], bool] | None = None) -> int:
        """Carry out the follow-up work a crash (or a failed hook) left; returns how many.

        ``owns(subject)`` says which entries are this engine's (a worker replays the
        entries of the shards it holds; None: all of them)."""
        found = await self.redis.hgetall(keys.INCIDENT_OUTBOX)
        done = 0
        for raw, raw_work in sorted(found.items()):
            member = cast(bytes, raw).decode()
            if owns is not None and not owns(msgpack.unpackb(raw_work, raw=False).get("subject")):
                continue
            logger.info("replaying incident follow-up %s", member)
            done += await self._follow_up(member, replayed=True)
        return done

    async def _follow_up(self, member: str, *, replayed: bool = False) -> bool:
        """The outbox entry ``member``: audit record, then hook, then deleted."""
        raw = await self.redis.hget(keys.INCIDENT_OUTBOX, member)
        if raw is None:
            return False
        work = msgpack.unpackb(raw, raw=False)
        try:
            incident = await self.store.get(work["incident"])
            if work.get("audit") and work["created"] and self.audit is not None:
                await self._audit_opened(incident, replayed)
            if work.get("notify") and self.on_incident is not None:
                await self.on_incident(incident, work["created"], work["raised"])
        except IncidentNotFound:
            pass  # gone (a wiped store): nothing left to follow up
        except Exception:
            # Kept in the outbox: the next replay tries again.
            logger.exception("incident follow-up failed entry=%s", member)
            return False
        faults.point("after_incident_followup")
        await self.redis.hdel(keys.INCIDENT_OUTBOX, member)
        return True

    async def _audit_opened(self, incident: Incident, replayed: bool) -> None:
        if replayed and await self._audited(incident.id):
            return  # written before the crash that left the entry
        await self.audit.append(
            "engine",
            "system",
            "incident.opened",
            incident.id,
            details={
                "rule": incident.rule,
                "subject": incident.subject,
                "severity": incident.severity,
            },
        )

    async def _audited(self, incident_id: str) -> bool:
        head = getattr(self.audit, "head", None)
        after = max(0, (await head())[0] - AUDIT_LOOKBACK) if head is not None else 0
        records = await self.audit.read(after=after, limit=AUDIT_LOOKBACK)
        return any(
            r.get("action") == "incident.opened" and r.get("target") == incident_id for r in records
        )

    async def _resolved(self, incident_id: str) -> None:
        if self.on_resolved is None:
            return
        try:
            await self.on_resolved(incident_id)
        except Exception:  # its run's next timer checks again (playbooks.standdown)
            logger.exception("resolved hook failed incident=%s", incident_id)

    async def _note(self, action: Action) -> None:
        sig = action.signal
        incident = await self.store.open_for(sig.rule, sig.subject)
        if incident is not None:
            entry = {"at": action.at, "event": action.reason, "actor": "engine"}
            await self.store.add_timeline(incident.id, entry)

    async def _clear(self, action: Action) -> None:
        sig = action.signal
        incident = await self.store.open_for(sig.rule, sig.subject)
        if incident is None:
            return
        try:
            if action.auto_resolve:
                await self.store.resolve(
                    incident.id, actor="engine", note="condition cleared", at=action.at
                )
                await self._resolved(incident.id)
            else:
                await self.store.add_timeline(
                    incident.id, {"at": action.at, "event": "condition_cleared", "actor": "engine"}
                )
        except (IncidentConflict, IncidentNotFound):
            pass  # resolved by a person meanwhile
