"""The playbook runner: durable runs in Redis, timers that survive restarts, side effects.

Auto-start (:meth:`PlaybookRunner.on_incident`) starts at most one run per
problem: an incident whose subject already has an active run for the same
kind of problem (:mod:`playbooks.coverage`) is linked to that run, with a
timeline note, instead of starting another playbook.

A run is one msgpack document at ``wf:run:{id}``; every transition
(:mod:`playbooks.state`) is applied under ``WATCH`` and written in one
``MULTI`` with its change entry, its incident timeline entries, the timers it
arms and the side effects it causes. Deadlines, escalations and waits are
members ``run|step|kind|n`` of the ``wf:runs:timers`` sorted set, scored by
wall-clock due time; side effects (audit records, notifications, actions, the
incident link) are members ``run|step|fx|n`` of the same set with their payload
in ``wf:runs:effects``.

Why this is exactly-once for state and at-least-once for effects: a due timer
is claimed by pushing its score a lease into the future (so two loops never
work it at once, and a crashed one's claim expires); a transition timer is
dropped in the *same* transaction that applies it, and a stale one (the step
already escalated n times, already done...) changes nothing. An effect is
dropped only after it was carried out; a crash in between repeats it, with the
same idempotency key on the webhook, so a receiver can drop the repeat.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.changes import add_change
from watchfloor.core.incidents import IncidentNotFound
from watchfloor.core.redis_tx import transact
from watchfloor.playbooks import coverage, model, standdown, state
from watchfloor.playbooks.effects import QUICK, encode_effect
from watchfloor.playbooks.errors import IncidentMissing, NotAllowed, RunConflict, RunNotFound
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.model import Mutation, Run, Tx, decode_run, encode_run
from watchfloor.playbooks.timers import DELIVERY_LEASE_S, LEASE_S, TimerLoop
from watchfloor.security.roles import Permission, allows

logger = logging.getLogger(__name__)


def _add_covered(run: Run, tx: Tx, incident: Any, now: float) -> None:
    """The run also works ``incident`` now: listed in ``covers``, noted on its timeline."""
    covers = run.covers or []
    if incident.id in covers:
        return
    run.covers = [*covers, incident.id]
    tx.op = "covered"
    note = f"run {run.id} also covers {incident.id} ({incident.rule})"
    tx.note(run, now, "covers", model.RUNNER, note=note)
    standdown.resume(run, tx, now, incident.id)


def _pack(data: Any) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


class PlaybookRunner:
    """Starts runs, applies step operations, and runs the timer loop (``run(stop)``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        incidents: Any,
        audit: Any,
        library: Library,
        *,
        actions: Any = None,
        clock: Callable[[], float] = time.time,
        auto_start: bool = True,
        poll_s: float = 0.5,
        changes_maxlen: int = 100_000,
        lease_s: float = LEASE_S,
        delivery_lease_s: float = DELIVERY_LEASE_S,
    ) -> None:
        self.redis = redis
        self.incidents = incidents
        self.audit = audit
        self.library = library
        self.actions = actions
        self.clock = clock
        self.auto_start = auto_start
        self.poll_s = poll_s
        self.changes_maxlen = changes_maxlen
        self.timers = TimerLoop(
            redis,
            self,
            incidents=incidents,
            audit=audit,
            actions=actions,
            clock=clock,
            poll_s=poll_s,
            lease_s=lease_s,
            delivery_lease_s=delivery_lease_s,
        )

    # --- reads -----------------------------------------------------------------

    async def load(self, run_id: str) -> Run:
        raw = await self.redis.get(keys.run(run_id))
        if raw is None:
            raise RunNotFound(f"no run {run_id!r}")
        return decode_run(raw)

    async def get(self, run_id: str) -> dict[str, Any]:
        """The run as the API serves it."""
        return (await self.load(run_id)).to_dict()

    async def list(self, state: str | None = None, limit: int = 200) -> builtins.list[dict]:
        """Runs newest first, as the API serves them (see :meth:`runs`)."""
        return [run.to_dict() for run in await self.runs(state, limit)]

    async def runs(self, state: str | None = None, limit: int = 200) -> builtins.list[Run]:
        """Runs newest first; ``state`` active, completed, aborted (None or all: every run)."""
        index = keys.RUNS_ACTIVE if state == "active" else keys.RUNS_ALL
        fetch = limit if state in (None, "all", "active") else limit * 4
        ids = await self.redis.zrevrange(index, 0, max(fetch - 1, 0))
        if not ids:
            return []
        raws = await self.redis.mget([keys.run(model.text(i)) for i in ids])
        runs = [decode_run(r) for r in raws if r is not None]
        if state not in (None, "all"):
            runs = [r for r in runs if r.state == state]
        return runs[:limit]

    async def run_for_incident(self, incident_id: str) -> str | None:
        raw = await self.redis.hget(keys.RUN_BY_INCIDENT, incident_id)
        return model.text(raw) if raw is not None else None

    # --- starting --------------------------------------------------------------

    async def on_incident(
        self, incident: Any, created: bool = True, severity_raised: bool = False
    ) -> dict[str, Any] | None:
        """Start the matching playbook for an incident, once per incident.

        Takes the engine's hook arguments (``created``, ``severity_raised``), so it
        can be the monitor's ``on_incident`` as it is: an incident whose severity
        rises to a playbook's minimum starts it then; one that already has a run
        keeps it.
        """
        if not self.auto_start or getattr(incident, "state", "open") == "resolved":
            return None
        playbook = self.library.match(
            incident.kind, incident.rule, incident.severity, incident.subject
        )
        if playbook is None:
            return None
        covered = await self._cover(incident)
        if covered is not None:
            return covered
        return await self._start(
            playbook.id,
            incident.to_dict(),
            actor=model.RUNNER,
            role=model.SYSTEM_ROLE,
            drill=False,
            once=True,
        )

    async def on_resolved(self, incident_id: str) -> dict[str, Any] | None:
        """The run of ``incident_id`` stands down if all its incidents are resolved now."""
        run_id = await self.run_for_incident(incident_id)
        if run_id is None:
            return None
        resolved = await self.resolved_incidents(run_id)
        if not resolved:
            return None
        now = self.clock()
        run, tx = await self.mutate(run_id, lambda r, t: standdown.stand_down(r, t, now, resolved))
        await self.after_commit(tx)
        return run.to_dict()

    async def resolved_incidents(self, run_id: str) -> builtins.list[str] | None:
        """The run's incidents when every one of them is resolved; else None."""
        try:
            run = await self.load(run_id)
        except RunNotFound:
            return None
        ids = standdown.incidents_of(run)
        if not ids or run.drill or run.state != "active":
            return None
        for incident_id in ids:
            try:
                if (await self.incidents.get(incident_id)).state != "resolved":
                    return None
            except IncidentNotFound:
                continue  # a wiped incident keeps no one working
        return ids

    async def _cover(self, incident: Any) -> dict[str, Any] | None:
        """Link ``incident`` to the active run already working its problem, if one is.

        Returns that run (or the incident's own run, when it has one already);
        None when a playbook must start (:mod:`playbooks.coverage` decides).
        """
        own = await self.run_for_incident(incident.id)
        if own is not None:
            return None  # _start finds it and keeps it (once per incident)
        runs = await self.runs("active")
        cover = coverage.covering_run(runs, incident.id, incident.kind, incident.subject)
        if cover is None:
            return None
        run_id = cover.id
        if not await self.redis.hsetnx(keys.RUN_BY_INCIDENT, incident.id, run_id):
            return None  # linked or started meanwhile: _start returns that run
        note = f"covered by run {run_id} {cover.playbook}"
        try:
            await self.incidents.set_playbook_run(incident.id, run_id)
            await self.incidents.add_timeline(
                incident.id,
                {"at": self.clock(), "event": "covered", "actor": model.RUNNER, "note": note},
            )
        except IncidentNotFound:
            return None
        now = self.clock()
        run, tx = await self.mutate(run_id, lambda r, t: _add_covered(r, t, incident, now))
        logger.info("incident covered incident=%s run=%s", incident.id, run_id)
        await self.after_commit(tx)
        return run.to_dict()

    async def start(
        self,
        playbook_id: str,
        incident_id: str | None,
        *,
        actor: str,
        role: str,
        drill: bool = False,
    ) -> dict[str, Any]:
        """Start a run by hand (``POST /v1/runs``, ``playbook start``, ``playbook drill``)."""
        if role != model.SYSTEM_ROLE and not allows(role, Permission.START_PLAYBOOK):
            raise NotAllowed(f"role {role} may not start playbooks")
        self.library.get(playbook_id)
        incident = None
        if incident_id:
            try:
                incident = (await self.incidents.get(incident_id)).to_dict()
            except IncidentNotFound:
                raise IncidentMissing(f"no incident {incident_id!r}") from None
        elif not drill:
            raise RunConflict("a run that is not a drill needs an incident")
        return await self._start(
            playbook_id, incident, actor=actor, role=role, drill=drill, once=False
        )

    async def _new_id(self) -> str:
        seq = await self.redis.incr(keys.SEQ_RUN)
        return f"RUN-{datetime.fromtimestamp(self.clock(), UTC).strftime('%Y%m%d')}-{seq:05d}"

    async def _start(
        self,
        playbook_id: str,
        incident: dict[str, Any] | None,
        *,
        actor: str,
        role: str,
        drill: bool,
        once: bool,
    ) -> dict[str, Any]:
        playbook = self.library.get(playbook_id)
        run_id = await self._new_id()
        incident_id = incident["id"] if incident else None

        async def create(pipe: Any) -> tuple[dict[str, Any], Tx | None]:
            if incident_id and not drill:
                existing = await pipe.hget(keys.RUN_BY_INCIDENT, incident_id)
                if existing is not None:
                    found = await self._existing(model.text(existing), playbook_id, once)
                    if found is not None:
                        return found, None
            now = self.clock()
            run = model.new_run(playbook, run_id, incident, actor=actor, drill=drill, now=now)
            tx = Tx()
            state.start(run, tx, now, actor=actor, role=role)
            pipe.multi()
            if incident_id and not drill:
                pipe.hsetnx(keys.RUN_BY_INCIDENT, incident_id, run_id)
            pipe.zadd(keys.RUNS_ALL, {run_id: now})
            self._write(pipe, run, tx)
            return run.to_dict(), tx

        run, tx = await transact(self.redis, [keys.RUN_BY_INCIDENT], create)
        if tx is None:
            return run  # the incident's run already
        logger.info(
            "run started run=%s playbook=%s incident=%s drill=%s",
            run_id,
            playbook_id,
            incident_id,
            drill,
        )
        await self.after_commit(tx)
        return run

    async def _existing(self, run_id: str, playbook_id: str, once: bool) -> dict | None:
        """The incident's run when it blocks this start (auto: any; by hand: same playbook)."""
        try:
            run = await self.get(run_id)
        except RunNotFound:
            return None
        if once:
            return run
        if run["playbook"] == playbook_id and run["state"] == "active":
            raise RunConflict(f"incident already runs {playbook_id} as {run_id}")
        return None

    # --- step operations -------------------------------------------------------

    async def step(
        self,
        op: str,
        run_id: str,
        step_id: str,
        *,
        actor: str,
        role: str,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Apply the step operation ``op`` (a name of :data:`playbooks.state.STEP_OPS`)."""
        try:
            transition = state.STEP_OPS[op].apply
        except KeyError:
            raise RunConflict(f"no step operation {op!r}") from None
        return await self._apply(
            run_id,
            lambda run, tx: transition(
                run, step_id, tx, self.clock(), actor=actor, role=role, note=note
            ),
        )

    async def abort(
        self, run_id: str, *, actor: str, role: str, note: str | None = None
    ) -> dict[str, Any]:
        return await self._apply(
            run_id,
            lambda run, tx: state.abort(run, tx, self.clock(), actor=actor, role=role, note=note),
        )

    async def _apply(self, run_id: str, fn: Mutation) -> dict[str, Any]:
        run, tx = await self.mutate(run_id, fn)
        await self.after_commit(tx)
        return run.to_dict()

    # --- persistence -----------------------------------------------------------

    async def mutate(self, run_id: str, fn: Mutation) -> tuple[Run, Tx]:
        """Apply ``fn`` to the run under WATCH and write it with everything it caused."""

        async def apply(pipe: Any) -> tuple[Run, Tx]:
            raw = await pipe.get(keys.run(run_id))
            if raw is None:
                raise RunNotFound(f"no run {run_id!r}")
            run, tx = decode_run(raw), Tx()
            fn(run, tx)
            if tx.op is not None or tx.drop:
                pipe.multi()
                self._write(pipe, run, tx)
            return run, tx

        return await transact(self.redis, [keys.run(run_id)], apply)

    def _write(self, pipe: Any, run: Run, tx: Tx) -> None:
        for member in tx.drop:
            pipe.zrem(keys.RUN_TIMERS, member)
            if "|fx|" in member:
                pipe.hdel(keys.RUN_EFFECTS, member)
        if tx.op is None:
            return
        pipe.set(keys.run(run.id), encode_run(run))
        if run.state == "active":
            pipe.zadd(keys.RUNS_ACTIVE, {run.id: run.started_at})
        else:
            pipe.zrem(keys.RUNS_ACTIVE, run.id)
            if run.drill and run.finished_at is not None:
                pipe.zadd(keys.RUN_DRILLS, {run.id: run.finished_at})
        for member, payload in tx.effects.items():
            pipe.hset(keys.RUN_EFFECTS, member, encode_effect(payload))
        if tx.timers:
            pipe.zadd(keys.RUN_TIMERS, tx.timers)
        for entry in tx.timeline:  # only a run with an incident notes (Tx.note)
            pipe.xadd(keys.incident_timeline(str(run.incident)), {"e": _pack(entry)})
        add_change(pipe, "run", tx.op, run.to_dict(), self.changes_maxlen)

    async def after_commit(self, tx: Tx) -> None:
        """Carry out the quick effects (audit, incident link) now; wake the loop for the rest."""
        for member, payload in tx.effects.items():
            if isinstance(payload, QUICK):
                try:
                    await self.timers.fire_now(member)
                except Exception as exc:  # left in the timers: the loop retries it
                    logger.warning("side effect deferred member=%s error=%r", member, exc)
        if tx.timers:
            self.timers.poke()

    # --- the timer loop --------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Fire due timers until ``stop`` is set (see :class:`playbooks.timers.TimerLoop`)."""
        await self.timers.run(stop)

    async def tick(self, limit: int = 100) -> int:
        """Fire every timer due now; returns how many were fired."""
        return await self.timers.tick(limit)
