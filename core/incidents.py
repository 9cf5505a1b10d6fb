"""The incident store (DESIGN.md's incident contract), kept in Redis.

One ongoing problem is one incident: the store keeps a fingerprint
``rule|subject`` -> open incident id, and :meth:`IncidentStore.fire` either
opens a new incident or updates the open one (``count``, ``updated_at``,
severity only ever rising while open). Every write is one Redis transaction
that also appends to the changes stream and to the incident's timeline, so the
console, the playbook runner and the audit see the same sequence. Evidence
must already be masked by the caller (detectors mask with ``security.pii``).

An engine write that needs follow-up work (the ``incident.opened`` audit
record, the playbook hook) also writes an **outbox** entry in that same
transaction (``keys.INCIDENT_OUTBOX``); the applier carries it out and deletes
it, and replays what is left at start, so a crash in between loses nothing.
A person resolving an engine incident leaves its fingerprint in
``keys.INCIDENT_REOPEN``: if the condition still holds at the next evaluation
the engine opens a linked incident (``reopened_from``).
"""

from __future__ import annotations

import builtins
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, cast

import msgpack
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from watchfloor.core import keys
from watchfloor.core.changes import add_change
from watchfloor.core.redis_tx import transact
from watchfloor.core.vocabulary import INCIDENT_KINDS, INCIDENT_STATES
from watchfloor.core.vocabulary import SEVERITIES as SEVERITIES
from watchfloor.core.vocabulary import severity_rank as severity_rank

KINDS: Final = frozenset(INCIDENT_KINDS)
"""Incident kinds (core.vocabulary); ``integrity``: the audit log forked or was rewritten."""
STATES: Final = frozenset(INCIDENT_STATES)


class IncidentError(Exception):
    """Base error of the incident store."""


class IncidentNotFound(IncidentError):
    pass


class IncidentConflict(IncidentError):
    """The requested transition is not possible from the incident's state (409)."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    kind: str
    rule: str
    severity: str
    state: str
    title: str
    subject: str
    opened_at: float
    updated_at: float
    resolved_at: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    playbook_run: str | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    tenant: str | None = None
    notified_severity: str | None = None
    """Highest severity a notification was sent for (re-alert only when it rises)."""
    dedupe_key: str | None = None
    """Last stream entry that fired it: a re-delivered entry does not count twice."""
    reopened_from: str | None = None
    """The incident a person resolved while its condition still held (this one reopens it)."""

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}|{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})


_FIELDS: Final = frozenset(Incident.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class FireResult:
    incident: Incident
    created: bool
    severity_raised: bool
    outbox: str | None = None
    """The outbox entry written with this change (its follow-up work), if any."""


def _pack(incident: Incident) -> bytes:
    return msgpack.packb(incident.to_dict(), use_bin_type=True)


def _unpack(raw: bytes | str) -> Incident:
    """An incident from its stored msgpack (the store's client never decodes replies)."""
    return Incident.from_dict(msgpack.unpackb(cast(bytes, raw), raw=False))


def _decoded(value: bytes | str) -> str:
    """An id from a reply of the store's client, which returns bytes."""
    return cast(bytes, value).decode()


class IncidentStore:
    """Incidents in Redis: ``wf:incident:{id}`` plus the open / all indexes."""

    def __init__(self, redis: aioredis.Redis, *, changes_maxlen: int = 100_000) -> None:
        self.redis = redis
        self.changes_maxlen = changes_maxlen

    # --- reads -------------------------------------------------------------------

    async def get(self, incident_id: str) -> Incident:
        raw = await self.redis.get(keys.incident(incident_id))
        if raw is None:
            raise IncidentNotFound(incident_id)
        return _unpack(raw)

    async def list(self, state: str = "open", limit: int = 500) -> list[Incident]:
        """Incidents newest first. ``state``: open, acknowledged, resolved or all."""
        index = keys.INCIDENTS_ALL if state in ("all", "resolved") else keys.INCIDENTS_OPEN
        fetch = limit if state in ("all", "open") else limit * 4
        ids = cast(list[bytes], await self.redis.zrevrange(index, 0, max(fetch - 1, 0)))
        if not ids:
            return []
        raws = await self.redis.mget([keys.incident(i.decode()) for i in ids])
        found = [_unpack(r) for r in raws if r is not None]
        if state == "open":
            return found[:limit]  # "open" means not resolved: open and acknowledged
        if state != "all":
            found = [i for i in found if i.state == state]
        return found[:limit]

    async def open_for(self, rule: str, subject: str) -> Incident | None:
        incident_id = await self.redis.hget(keys.INCIDENT_FINGERPRINTS, f"{rule}|{subject}")
        if incident_id is None:
            return None
        try:
            return await self.get(_decoded(incident_id))
        except IncidentNotFound:
            return None

    async def timeline(self, incident_id: str, count: int = 500) -> builtins.list[dict[str, Any]]:
        reply = await self.redis.xrange(keys.incident_timeline(incident_id), count=count)
        entries = cast(builtins.list[tuple[bytes, dict[bytes, bytes]]], reply)
        return [msgpack.unpackb(f[b"e"], raw=False) for _, f in entries]

    # --- writes ------------------------------------------------------------------

    async def fire(
        self,
        *,
        kind: str,
        rule: str,
        subject: str,
        severity: str,
        title: str,
        evidence: dict[str, Any],
        at: float,
        tenant: str | None = None,
        dedupe_key: str | None = None,
        followup: dict[str, Any] | None = None,
        reopened_from: str | None = None,
    ) -> FireResult:
        """Open an incident for (rule, subject), or update the one that is open.

        ``followup`` (the work to do once it is written: ``audit``, ``notify``) is put
        in the outbox in the same transaction when the incident opens or its severity
        rises; ``reopened_from`` links a new incident to the one it reopens.
        """
        if kind not in KINDS or severity not in SEVERITIES:
            raise IncidentError(f"bad kind {kind!r} or severity {severity!r}")
        fp = f"{rule}|{subject}"

        async def write(pipe: Any) -> FireResult:
            current_id = await pipe.hget(keys.INCIDENT_FINGERPRINTS, fp)
            current = None
            if current_id is not None:
                raw = await pipe.get(keys.incident(_decoded(current_id)))
                current = _unpack(raw) if raw is not None else None
            if current is None:
                result = await self._open(
                    pipe,
                    kind,
                    rule,
                    subject,
                    severity,
                    title,
                    evidence,
                    at,
                    tenant,
                    dedupe_key,
                    reopened_from,
                )
            else:
                result = self._update(pipe, current, severity, title, evidence, at, dedupe_key)
            return self._outbox(pipe, result, followup)

        return await transact(self.redis, [keys.INCIDENT_FINGERPRINTS], write)

    async def _open(
        self,
        pipe: Any,
        kind: str,
        rule: str,
        subject: str,
        severity: str,
        title: str,
        evidence: dict[str, Any],
        at: float,
        tenant: str | None,
        dedupe_key: str | None,
        reopened_from: str | None = None,
    ) -> FireResult:
        incident = Incident(
            id=await self._new_id(at),
            kind=kind,
            rule=rule,
            severity=severity,
            state="open",
            title=title,
            subject=subject,
            opened_at=at,
            updated_at=at,
            evidence=evidence,
            tenant=tenant,
            dedupe_key=dedupe_key,
            reopened_from=reopened_from,
        )
        pipe.multi()
        detail = {"severity": severity, "title": title}
        if reopened_from:
            detail["reopened_from"] = reopened_from
            entry = {"at": at, "event": "reopened", "actor": "engine", "incident": incident.id}
            pipe.xadd(keys.incident_timeline(reopened_from), _timeline_fields(entry))
        self._write(pipe, incident, "opened", detail)
        pipe.hset(keys.INCIDENT_FINGERPRINTS, incident.fingerprint, incident.id)
        pipe.zadd(keys.INCIDENTS_OPEN, {incident.id: at})
        pipe.zadd(keys.INCIDENTS_ALL, {incident.id: at})
        return FireResult(incident, created=True, severity_raised=False)

    def _update(
        self,
        pipe: Any,
        current: Incident,
        severity: str,
        title: str,
        evidence: dict[str, Any],
        at: float,
        dedupe_key: str | None,
    ) -> FireResult:
        pipe.multi()
        if dedupe_key is not None and dedupe_key == current.dedupe_key:
            pipe.get(keys.incident(current.id))  # keep the transaction non-empty
            return FireResult(current, created=False, severity_raised=False)
        raised = severity_rank(severity) > severity_rank(current.severity)
        updated = replace(
            current,
            severity=severity if raised else current.severity,
            title=title if raised else current.title,
            evidence=evidence or current.evidence,
            count=current.count + 1,
            updated_at=max(current.updated_at, at),
            dedupe_key=dedupe_key,
        )
        detail: dict[str, Any] = {"count": updated.count}
        if raised:
            detail["severity"] = severity
        self._write(pipe, updated, "severity_raised" if raised else "updated", detail)
        return FireResult(updated, created=False, severity_raised=raised)

    @staticmethod
    def _outbox(pipe: Any, result: FireResult, followup: dict[str, Any] | None) -> FireResult:
        """Queue ``followup`` in the transaction of an opening or a severity rise."""
        if not followup or not (result.created or result.severity_raised):
            return result
        inc = result.incident
        event = "opened" if result.created else f"raised:{inc.severity}"
        member = f"{inc.id}|{event}"
        work = {
            **followup,
            "incident": inc.id,
            "subject": inc.subject,
            "created": result.created,
            "raised": result.severity_raised,
        }
        pipe.hset(keys.INCIDENT_OUTBOX, member, msgpack.packb(work, use_bin_type=True))
        return replace(result, outbox=member)

    async def create_manual(
        self,
        *,
        title: str,
        severity: str,
        subject: str,
        actor: str,
        at: float | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Incident:
        """A hand-opened incident (kind ``manual``); each call opens a new one."""
        if severity not in SEVERITIES:
            raise IncidentError(f"bad severity {severity!r}")
        at = time.time() if at is None else at
        incident = Incident(
            id=await self._new_id(at),
            kind="manual",
            rule="manual",
            severity=severity,
            state="open",
            title=title,
            subject=subject,
            opened_at=at,
            updated_at=at,
            evidence=evidence or {},
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            self._write(
                pipe, incident, "opened", {"severity": severity, "title": title}, actor=actor, at=at
            )
            pipe.zadd(keys.INCIDENTS_OPEN, {incident.id: at})
            pipe.zadd(keys.INCIDENTS_ALL, {incident.id: at})
            await pipe.execute()
        return incident

    async def _new_id(self, at: float) -> str:
        seq = await self.redis.incr(keys.SEQ_INCIDENT)
        return f"INC-{datetime.fromtimestamp(at, UTC).strftime('%Y%m%d')}-{seq:05d}"

    async def acknowledge(
        self, incident_id: str, *, actor: str, note: str | None = None, at: float | None = None
    ) -> Incident:
        def change(inc: Incident, now: float) -> Incident:
            if inc.state != "open":
                raise IncidentConflict(f"incident {inc.id} is {inc.state}, not open")
            return replace(
                inc,
                state="acknowledged",
                acknowledged_at=now,
                acknowledged_by=actor,
                updated_at=now,
            )

        return await self._transition(incident_id, change, "acknowledged", actor, note, at)

    async def resolve(
        self, incident_id: str, *, actor: str, note: str | None = None, at: float | None = None
    ) -> Incident:
        def change(inc: Incident, now: float) -> Incident:
            if inc.state == "resolved":
                raise IncidentConflict(f"incident {inc.id} is already resolved")
            return replace(
                inc, state="resolved", resolved_at=now, resolved_by=actor, updated_at=now
            )

        return await self._transition(incident_id, change, "resolved", actor, note, at)

    async def add_note(
        self, incident_id: str, *, actor: str, note: str, at: float | None = None
    ) -> Incident:
        return await self._transition(incident_id, lambda inc, now: inc, "note", actor, note, at)

    async def set_playbook_run(self, incident_id: str, run_id: str) -> Incident:
        return await self._transition(
            incident_id,
            lambda inc, now: replace(inc, playbook_run=run_id),
            "playbook_started",
            "runner",
            None,
            None,
            {"run": run_id},
        )

    async def mark_notified(self, incident_id: str, severity: str) -> Incident:
        return await self._transition(
            incident_id,
            lambda inc, now: replace(inc, notified_severity=severity),
            None,
            "engine",
            None,
            None,
        )

    async def add_timeline(self, incident_id: str, entry: dict[str, Any]) -> None:
        """Append a timeline entry written by someone else (a playbook step, a silence)."""
        await self.redis.xadd(keys.incident_timeline(incident_id), _timeline_fields(entry))

    async def _transition(
        self,
        incident_id: str,
        change: Any,
        event: str | None,
        actor: str,
        note: str | None,
        at: float | None,
        detail: dict[str, Any] | None = None,
    ) -> Incident:

        async def write(pipe: Any) -> Incident:
            raw = await pipe.get(keys.incident(incident_id))
            if raw is None:
                raise IncidentNotFound(incident_id)
            current = _unpack(raw)
            now = time.time() if at is None else at
            updated = change(current, now)
            pipe.multi()
            self._write(pipe, updated, event, dict(detail or {}), actor=actor, note=note, at=now)
            if updated.state == "resolved" and current.state != "resolved":
                pipe.zrem(keys.INCIDENTS_OPEN, updated.id)
                self._release_fingerprint(pipe, updated)
                if actor != "engine" and updated.kind != "manual":
                    # The engine did not see its condition clear: it checks.
                    mark = f"{updated.id}|{now!r}"
                    pipe.hset(keys.INCIDENT_REOPEN, updated.fingerprint, mark)
            return updated

        return await transact(self.redis, [keys.incident(incident_id)], write)

    @staticmethod
    def _release_fingerprint(pipe: Any, incident: Incident) -> None:
        # Only drop the fingerprint if it still points at this incident.
        pipe.eval(
            "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
            "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0",
            1,
            keys.INCIDENT_FINGERPRINTS,
            incident.fingerprint,
            incident.id,
        )

    def _write(
        self,
        pipe: Any,
        incident: Incident,
        event: str | None,
        detail: dict[str, Any],
        *,
        actor: str = "engine",
        note: str | None = None,
        at: float | None = None,
    ) -> None:
        pipe.set(keys.incident(incident.id), _pack(incident))
        op = event or "updated"
        add_change(pipe, "incident", op, incident.to_dict(), self.changes_maxlen)
        if event is None:
            return
        entry: dict[str, Any] = {
            "at": incident.updated_at if at is None else at,
            "event": event,
            "actor": actor,
            **detail,
        }
        if note:
            entry["note"] = note
        pipe.xadd(keys.incident_timeline(incident.id), _timeline_fields(entry))


def _timeline_fields(entry: dict[str, Any]) -> dict[FieldT, EncodableT]:
    return {"e": msgpack.packb(entry, use_bin_type=True)}
