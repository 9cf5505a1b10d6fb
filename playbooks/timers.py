"""The timer loop of the playbook runner: deadlines, escalations, waits and side effects.

Members of ``wf:runs:timers`` are due at their score (wall-clock seconds). A due
member is claimed by moving its score a lease ahead (one Lua call), so two
loops never work the same member and the claim of a process that died expires.
Deadline, escalation and wait timers are applied through
:meth:`RunStore.mutate` (the runner is the store; the loop knows it only by
that interface), which drops the timer in the same transaction that applies
it: exactly once. Side effects (``fx``) are
carried out, then dropped: at least once, with stable idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.incidents import IncidentNotFound
from watchfloor.core.leases import wait_or_stop
from watchfloor.playbooks import model, standdown, state
from watchfloor.playbooks.effects import (
    ActionEffect,
    AuditEffect,
    Delivery,
    LinkEffect,
    NotifyEffect,
    decode_effect,
)
from watchfloor.playbooks.errors import RunNotFound
from watchfloor.playbooks.model import Mutation, Run, Tx

logger = logging.getLogger(__name__)

LEASE_S = 5.0
"""How long a claimed timer is held before another loop may take it over (a crashed
process's claim expires after this)."""
DELIVERY_LEASE_S = 60.0
"""The lease of a notification or action: longer than its retries can take."""
_CLAIM = """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""
ESCALATION_TITLE = "升级 Escalation: {title}"
ESCALATION_TEXT = "【升级 {n}】{step_title}（{step}）未按时完成 / is late. Run {run}, {subject}"


class RunStore(Protocol):
    """What the timer loop needs of the runs (the runner is one): read, change, follow up."""

    async def load(self, run_id: str) -> Run: ...

    async def mutate(self, run_id: str, fn: Mutation) -> tuple[Run, Tx]: ...

    async def after_commit(self, tx: Tx) -> None: ...

    async def resolved_incidents(self, run_id: str) -> list[str] | None: ...


class TimerLoop:
    """Fires the due timers of every run in ``store``; carries out their side effects."""

    def __init__(
        self,
        redis: aioredis.Redis,
        store: RunStore,
        *,
        incidents: Any,
        audit: Any,
        actions: Any,
        clock: Callable[[], float],
        poll_s: float,
        lease_s: float = LEASE_S,
        delivery_lease_s: float = DELIVERY_LEASE_S,
    ) -> None:
        self.redis = redis
        self.store = store
        self.incidents = incidents
        self.audit = audit
        self.actions = actions
        self.clock = clock
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.delivery_lease_s = delivery_lease_s
        self._claim = redis.register_script(_CLAIM)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[bool]] = set()
        self._delivering: set[str] = set()
        """Members this loop is delivering now: never claimed again while they run."""

    def poke(self) -> None:
        """A change armed a timer: look for due ones now rather than after the poll."""
        self._wake.set()

    async def fire_now(self, member: str) -> bool:
        """Claim and carry out one timer at once (a quick effect right after its commit)."""
        return await self.claim_and_fire(member, self.clock())

    async def run(self, stop: asyncio.Event, drain_s: float = 10.0) -> None:
        """Fire due timers until ``stop`` is set; woken early when a change arms a timer.

        Deliveries (webhooks with their retries) run in the background so that one
        slow receiver never holds up another run's deadline; on stop they get
        ``drain_s`` to finish (an unfinished one is retried after its lease).
        """
        logger.info("playbook runner started")
        while not stop.is_set():
            try:
                await self.tick(background=True)
            except Exception:
                logger.exception("playbook timer tick failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=drain_s)
            for task in pending:
                task.cancel()
        logger.info("playbook runner stopped")

    async def tick(self, limit: int = 100, *, background: bool = False) -> int:
        """Fire every timer due now; returns how many were fired (or handed to a task)."""
        now = self.clock()
        due = await self.redis.zrangebyscore(keys.RUN_TIMERS, "-inf", now, start=0, num=limit)
        members: list[str] = []
        deliveries: list[str] = []
        for raw in due:
            member = model.text(raw)
            if member in self._delivering:
                continue  # still running here, past its lease only if renewals failed
            (deliveries if await self._is_delivery(member) else members).append(member)
        if not self.actions:
            deliveries = []  # left for a process that can send (the monitor's loop)
        # A delivery is held for the delivery lease: a receiver slower than the short
        # lease must not see the next tick claim (and send) the same notification again.
        fires = [self._fire_logged(m, now, self.lease_s) for m in members]
        if background:
            for member in deliveries:
                task = asyncio.create_task(self._fire_logged(member, now, self.delivery_lease_s))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        else:
            fires += [self._fire_logged(m, now, self.delivery_lease_s) for m in deliveries]
        fired = await asyncio.gather(*fires)
        return sum(fired) + (len(deliveries) if background else 0)

    async def _fire_logged(self, member: str, now: float, lease_s: float) -> bool:
        try:
            return await self.claim_and_fire(member, now, lease_s)
        except Exception as exc:  # the claim's lease expires and the timer is tried again
            logger.error("timer failed member=%s error=%r", member, exc)
            return False

    async def _is_delivery(self, member: str) -> bool:
        if "|fx|" not in member:
            return False
        raw = await self.redis.hget(keys.RUN_EFFECTS, member)
        return raw is not None and isinstance(decode_effect(raw), ActionEffect | NotifyEffect)

    async def claim_and_fire(self, member: str, now: float, lease_s: float | None = None) -> bool:
        """Claim ``member`` for ``lease_s`` (the short lease by default), then fire it."""
        until = now + (self.lease_s if lease_s is None else lease_s)
        if not await self._claim(keys=[keys.RUN_TIMERS], args=[member, now, until]):
            return False
        run_id, step_id, kind, n = model.parse_timer(member)
        if kind == "fx":
            await self._effect(member, run_id, step_id)
            return True

        # A deadline or escalation of a run whose incidents are all resolved pages no one.
        resolved = await self.store.resolved_incidents(run_id) if kind != "wait" else None

        def fire(run: Run, tx: Tx) -> None:
            tx.drop.append(member)
            if resolved:
                standdown.stand_down(run, tx, self.clock(), resolved)
            state.on_timer(run, step_id, kind, n, tx, self.clock())

        try:
            _, tx = await self.store.mutate(run_id, fire)
        except RunNotFound:
            await self.redis.zrem(keys.RUN_TIMERS, member)
            return True
        await self.store.after_commit(tx)
        return True

    # --- side effects ----------------------------------------------------------

    async def _effect(self, member: str, run_id: str, step_id: str) -> None:
        raw = await self.redis.hget(keys.RUN_EFFECTS, member)
        effect = decode_effect(raw) if raw is not None else None  # None: already carried out
        if isinstance(effect, AuditEffect) and self.audit is not None:
            record = effect.record
            # The timer member names the record: a repeat after a crash is recognisable.
            await self.audit.append(
                actor=record.actor,
                role=record.role,
                action=record.action,
                target=record.target,
                outcome=record.outcome,
                details={**record.details, "fx": member},
            )
        elif isinstance(effect, LinkEffect):
            with contextlib.suppress(IncidentNotFound):
                await self.incidents.set_playbook_run(effect.incident, run_id)
        elif isinstance(effect, ActionEffect | NotifyEffect):
            await self._deliver(member, run_id, step_id, effect)
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.RUN_TIMERS, member)
            pipe.hdel(keys.RUN_EFFECTS, member)
            await pipe.execute()

    async def _deliver(self, member: str, run_id: str, step_id: str, effect: Delivery) -> None:
        # A receiver slower than the delivery lease must not see the claim expire under it
        # (this loop's next tick, or another loop, would send it again): the claim is
        # renewed while the delivery runs, and lapses only if this process dies.
        self._delivering.add(member)
        done = asyncio.Event()
        holding = asyncio.create_task(self._hold(member, done))
        try:
            await self._deliver_held(member, run_id, step_id, effect)
        finally:
            # ended between two renewals, never cancelled inside its Redis command
            done.set()
            await holding
            self._delivering.discard(member)

    async def _hold(self, member: str, done: asyncio.Event) -> None:
        """Push ``member``'s claim a delivery lease ahead every third of one (if still set)."""
        while True:
            await wait_or_stop(done, self.delivery_lease_s / 3)
            if done.is_set():
                return
            try:
                until = self.clock() + self.delivery_lease_s
                await self.redis.zadd(keys.RUN_TIMERS, {member: until}, xx=True)
            except Exception as exc:  # the claim may lapse: at least once, same key
                logger.warning("delivery claim not renewed member=%s error=%r", member, exc)

    async def _deliver_held(self, member: str, run_id: str, step_id: str, effect: Delivery) -> None:
        run = await self.store.load(run_id)
        step = run.step(step_id)
        values = {**run.values, "step": step_id, "step_title": step.title_zh}
        if isinstance(effect, ActionEffect):
            result = await self.actions.run(
                step.action, values=values, key=effect.key, drill=run.drill, at=self.clock()
            )
        else:
            values["n"] = effect.escalation
            text = (step.escalation and step.escalation.message) or ESCALATION_TEXT
            result = await self.actions.notify(
                effect.target,
                ESCALATION_TITLE,
                text,
                values=values,
                key=effect.key,
                drill=run.drill,
                purpose="escalation",
            )
        outcome = {**result.to_dict(), "key": effect.key, "at": self.clock()}

        def record(run: Run, tx: Tx) -> None:
            tx.drop.append(member)
            if isinstance(effect, ActionEffect):
                state.on_action_result(run, step_id, effect.attempt, outcome, tx, self.clock())
            else:
                notice = {**outcome, "escalation": effect.escalation}
                run.step(step_id).notifications.append(notice)
                tx.op = "step_notified"

        _, tx = await self.store.mutate(run_id, record)
        await self.store.after_commit(tx)
