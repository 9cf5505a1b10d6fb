"""The run state machine, as pure functions over a :class:`~playbooks.model.Run`.

Each transition changes the run in place and records in a :class:`Tx` what
must be written with it in the same Redis transaction: timers to add or drop,
side effects (audit records, notifications, actions, the incident link) and
incident timeline entries. No I/O here, so every rule of the machine is
testable without Redis; ``now`` is always passed in (wall-clock seconds).

Run states: ``active`` -> ``completed`` | ``aborted``. Step states: ``pending``
(waits for ``needs``), ``ready``, ``late`` (deadline passed), ``escalated``,
``failed`` (its action failed), ``done``, ``skipped``. Lateness and readiness
are separate: a step that went late while pending keeps ``late`` when its needs
are done, and ``ready_at`` says it may be worked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol

from watchfloor.playbooks.actions.wait import wait_seconds
from watchfloor.playbooks.drill import score_run
from watchfloor.playbooks.effects import ActionEffect, LinkEffect, NotifyEffect
from watchfloor.playbooks.errors import NotAllowed, RunConflict
from watchfloor.playbooks.model import FINISHED, RUNNER, SYSTEM_ROLE, Run, RunStep, Tx, timer
from watchfloor.security.roles import (
    Permission,
    allows,
    may_approve_step,
    may_skip_step,
    may_work_step,
)


def start(run: Run, tx: Tx, now: float, *, actor: str, role: str) -> None:
    tx.op = "started"
    for step in run.steps:
        if step.deadline_from == "start" and step.deadline_s is not None:
            _set_deadline(run, step, tx, now, step.deadline_s)
    for step in run.steps:
        if not step.needs:
            _make_ready(run, step, tx, now)
    tx.audit(run, None, now, actor=actor, role=role, action="run.start")
    if run.incident and not run.drill:
        tx.effect(run, None, LinkEffect(run.incident), now)


def _set_deadline(run: Run, step: RunStep, tx: Tx, now: float, deadline_s: float) -> None:
    step.deadline = now + deadline_s
    tx.timers[timer(run.id, step.id, "deadline")] = step.deadline


def _make_ready(run: Run, step: RunStep, tx: Tx, now: float) -> None:
    step.ready_at = now
    if step.state == "pending":
        step.state = "ready"
    if step.deadline_from == "ready" and step.deadline_s is not None:
        _set_deadline(run, step, tx, now, step.deadline_s)
    if step.action:
        _start_action(run, step, tx, now, step.action)


def _start_action(run: Run, step: RunStep, tx: Tx, now: float, action: dict[str, Any]) -> None:
    step.attempt += 1
    if action["type"] == "wait":
        due = now + wait_seconds(action)
        tx.timers[timer(run.id, step.id, "wait", step.attempt)] = due
        return
    key = f"{run.id}:{step.id}:{step.attempt}"
    tx.effect(run, step.id, ActionEffect(step.attempt, key), now)


# --- looking things up ----------------------------------------------------------------


def _require_active(run: Run) -> None:
    if run.state != "active":
        raise RunConflict(f"run {run.id} is {run.state}")


def _require_workable(run: Run, step: RunStep) -> None:
    _require_active(run)
    if step.state in FINISHED:
        raise RunConflict(f"step {step.id} is already {step.state}")
    if step.ready_at is None:
        waiting = [n for n in step.needs if run.step(n).state not in FINISHED]
        raise RunConflict(f"step {step.id} waits for {', '.join(waiting)}")


def may_work(role: str, step: RunStep) -> bool:
    return role == SYSTEM_ROLE or may_work_step(role, step.owner)


def pending_approver(step: RunStep) -> str | None:
    """The role whose approval the step still waits for, if any."""
    approval = step.approval
    return str(approval.role) if approval and approval.by is None else None


def _human(run: Run, role: str, now: float) -> None:
    if role != SYSTEM_ROLE and run.first_ack_at is None:
        run.first_ack_at = now


# --- transitions asked for by people ----------------------------------------------------


def mark_done(
    run: Run,
    step_id: str,
    tx: Tx,
    now: float,
    *,
    actor: str,
    role: str,
    note: str | None,
) -> None:
    step = run.step(step_id)
    if not may_work(role, step):
        raise NotAllowed(f"role {role} may not work step {step_id}")
    _require_workable(run, step)
    if step.awaiting_approval:
        raise RunConflict(f"step {step_id} is done and waits for approval")
    _human(run, role, now)
    step.done_by, step.done_at, step.note = actor, now, note
    tx.audit(run, step_id, now, actor=actor, role=role, action="run.step.done", note=note)
    approval = step.approval
    if approval and approval.by is None:
        step.awaiting_approval = True
        tx.op = "step_awaiting_approval"
        tx.note(run, now, "step_awaiting_approval", actor, step=step_id, note=note)
        return
    _complete(run, step, tx, now, actor, note)


def approve(
    run: Run,
    step_id: str,
    tx: Tx,
    now: float,
    *,
    actor: str,
    role: str,
    note: str | None,
) -> None:
    step = run.step(step_id)
    approval = step.approval
    if approval is None:
        if not may_work(role, step):
            raise NotAllowed(f"role {role} may not work step {step_id}")
        raise RunConflict(f"step {step_id} needs no approval")
    if not may_approve_step(role, approval.role):
        raise NotAllowed(f"step {step_id} must be approved by {approval.role}")
    _require_active(run)
    if step.state in FINISHED or approval.by is not None:
        raise RunConflict(f"step {step_id} is already approved")
    _human(run, role, now)
    approval.by, approval.at, approval.note = actor, now, note
    tx.audit(run, step_id, now, actor=actor, role=role, action="run.step.approve", note=note)
    if step.awaiting_approval:
        step.awaiting_approval = False
        _complete(run, step, tx, now, actor, note)
    else:
        tx.op = "step_approved"
        tx.note(run, now, "step_approved", actor, step=step_id, note=note)


def skip(
    run: Run,
    step_id: str,
    tx: Tx,
    now: float,
    *,
    actor: str,
    role: str,
    note: str | None,
) -> None:
    step = run.step(step_id)
    if not may_skip_step(role, pending_approver(step)):
        approver = pending_approver(step)
        because = f": it waits for the approval of {approver}" if approver else ""
        raise NotAllowed(f"role {role} may not skip step {step_id}{because}")
    _require_active(run)
    if step.state in FINISHED:
        raise RunConflict(f"step {step_id} is already {step.state}")
    _human(run, role, now)
    step.state, step.done_by, step.done_at, step.note = "skipped", actor, now, note
    tx.audit(run, step_id, now, actor=actor, role=role, action="run.step.skip", note=note)
    _after_finish(run, step, tx, now, actor, "step_skipped", note)


def escalate(
    run: Run,
    step_id: str,
    tx: Tx,
    now: float,
    *,
    actor: str,
    role: str,
    note: str | None,
) -> None:
    step = run.step(step_id)
    if not may_work(role, step):
        raise NotAllowed(f"role {role} may not escalate step {step_id}")
    _require_active(run)
    if step.state in FINISHED:
        raise RunConflict(f"step {step_id} is already {step.state}")
    _human(run, role, now)
    _escalate(run, step, tx, now, actor, role, note)


def abort(run: Run, tx: Tx, now: float, *, actor: str, role: str, note: str | None) -> None:
    if role != SYSTEM_ROLE and not allows(role, Permission.START_PLAYBOOK):
        raise NotAllowed(f"role {role} may not abort runs")
    _require_active(run)
    run.state, run.finished_at, run.aborted_by, run.note = "aborted", now, actor, note
    if run.drill:
        run.score = score_run(run)
    tx.op = "aborted"
    tx.audit(run, None, now, actor=actor, role=role, action="run.abort", note=note)
    tx.note(run, now, "playbook_aborted", actor, note=note)


# --- transitions of the runner itself ------------------------------------------------


def _complete(run: Run, step: RunStep, tx: Tx, now: float, actor: str, note: str | None) -> None:
    step.state = "done"
    if step.done_at is None:
        step.done_by, step.done_at = actor, now
    if step.deadline is not None and step.done_at > step.deadline:
        step.late = True
    _after_finish(run, step, tx, now, actor, "step_done", note)


def _after_finish(
    run: Run,
    step: RunStep,
    tx: Tx,
    now: float,
    actor: str,
    event: str,
    note: str | None,
) -> None:
    tx.op = event
    tx.note(run, now, event, actor, step=step.id, note=note)
    states = {s.id: s.state for s in run.steps}
    for other in run.steps:
        if (
            other.ready_at is None
            and other.state not in FINISHED
            and all(states[n] in FINISHED for n in other.needs)
        ):
            _make_ready(run, other, tx, now)
    if all(s.state in FINISHED for s in run.steps):
        run.state, run.finished_at = "completed", now
        run.score = score = score_run(run)
        tx.op = "completed"
        tx.audit(
            run,
            None,
            now,
            actor=RUNNER,
            role=SYSTEM_ROLE,
            action="run.completed",
            points=score["points"],
        )
        tx.note(run, now, "playbook_completed", RUNNER)


def _escalate(
    run: Run,
    step: RunStep,
    tx: Tx,
    now: float,
    actor: str,
    role: str,
    note: str | None,
) -> None:
    step.escalations += 1
    if step.state not in FINISHED:
        step.state = "escalated"
    tx.op = "step_escalated"
    n = step.escalations
    tx.audit(
        run,
        step.id,
        now,
        actor=actor,
        role=role,
        action="run.step.escalate",
        escalation=n,
        note=note,
    )
    tx.note(run, now, "step_escalated", actor, step=step.id, escalation=n, note=note)
    for target in step.escalation.notify if step.escalation else []:
        key = f"{run.id}:{step.id}:esc:{n}:{target}"
        tx.effect(run, step.id, NotifyEffect(target, n, key), now)


def on_timer(run: Run, step_id: str, kind: str, n: int, tx: Tx, now: float) -> None:
    """A due deadline, escalation or wait timer; stale timers change nothing."""
    if run.state != "active":
        return
    if run.standing_down and kind in ("deadline", "escalate"):
        return  # every incident is resolved: no one is paged (playbooks.standdown)
    step = run.step(step_id)
    if step.state in FINISHED:
        return
    if kind == "deadline" and not step.late:
        _deadline_passed(run, step, tx, now)
    elif kind == "escalate" and step.auto_escalations < n:
        step.auto_escalations = n
        _escalate(run, step, tx, now, RUNNER, SYSTEM_ROLE, None)
        esc = step.escalation
        if esc is not None and n < esc.repeat:
            tx.timers[timer(run.id, step_id, "escalate", n + 1)] = now + esc.every_s
    elif kind == "wait" and n == step.attempt:
        step.action_result = {"ok": True, "detail": "waited", "attempts": 1}
        _finish_by_runner(run, step, tx, now)


def _deadline_passed(run: Run, step: RunStep, tx: Tx, now: float) -> None:
    step.late = True
    if step.state in ("pending", "ready", "failed"):
        step.state = "late"
    tx.op = "step_late"
    tx.audit(
        run,
        step.id,
        now,
        actor=RUNNER,
        role=SYSTEM_ROLE,
        action="run.step.late",
        deadline=step.deadline,
    )
    tx.note(run, now, "step_late", RUNNER, step=step.id)
    esc = step.escalation
    if esc and step.deadline is not None:
        tx.timers[timer(run.id, step.id, "escalate", 1)] = step.deadline + esc.after_s


def _finish_by_runner(run: Run, step: RunStep, tx: Tx, now: float) -> None:
    approval = step.approval
    step.done_by, step.done_at = RUNNER, now
    if approval and approval.by is None:
        step.awaiting_approval = True
        tx.op = "step_awaiting_approval"
        tx.note(run, now, "step_awaiting_approval", RUNNER, step=step.id)
        return
    _complete(run, step, tx, now, RUNNER, None)


def on_action_result(
    run: Run, step_id: str, attempt: int, result: dict[str, Any], tx: Tx, now: float
) -> None:
    """Record what an action did; success finishes the step, failure marks it failed."""
    step = run.step(step_id)
    tx.op = "step_action"
    if attempt != step.attempt or step.state in FINISHED or run.state != "active":
        step.action_result = {**result, "stale": True}
        return
    step.action_result = result
    outcome = "ok" if result.get("ok") else "failed"
    tx.audit(
        run,
        step_id,
        now,
        actor=RUNNER,
        role=SYSTEM_ROLE,
        action="run.step.action",
        outcome=outcome,
        result=result,
    )
    if result.get("ok"):
        _finish_by_runner(run, step, tx, now)
        return
    step.state = "failed"
    tx.op = "step_failed"
    tx.note(run, now, "step_failed", RUNNER, step=step_id, note=result.get("detail"))


def retry_action(
    run: Run,
    step_id: str,
    tx: Tx,
    now: float,
    *,
    actor: str,
    role: str,
    note: str | None = None,
) -> None:
    del note  # a retry takes no note (the API accepts an empty body only)
    step = run.step(step_id)
    if not may_work(role, step):
        raise NotAllowed(f"role {role} may not work step {step_id}")
    _require_workable(run, step)
    if not step.action or step.state != "failed":
        raise RunConflict(f"step {step_id} has no failed action to retry")
    step.state = "late" if step.late else "ready"
    tx.op = "step_retry"
    tx.audit(run, step_id, now, actor=actor, role=role, action="run.step.retry")
    _start_action(run, step, tx, now, step.action)


# --- the table of step operations ---------------------------------------------------


class StepTransition(Protocol):
    def __call__(
        self,
        run: Run,
        step_id: str,
        tx: Tx,
        now: float,
        *,
        actor: str,
        role: str,
        note: str | None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class StepOp:
    """One thing a person may do to a step: the API gate's permission, the transition.

    The gate only lets a role in; the transition checks the step's owner or approver
    role itself (so the runner refuses the same things the API does).
    """

    permission: Permission
    apply: StepTransition
    takes_note: bool = True


STEP_OPS: Final[Mapping[str, StepOp]] = MappingProxyType(
    {
        "done": StepOp(Permission.READ_BOARD, mark_done),
        "escalate": StepOp(Permission.READ_BOARD, escalate),
        "approve": StepOp(Permission.READ_BOARD, approve),
        "skip": StepOp(Permission.START_PLAYBOOK, skip),
        "retry": StepOp(Permission.RUN_STEPS, retry_action, takes_note=False),
    }
)
"""Step operations by name (``POST /v1/runs/{id}/steps/{step}/{name}``)."""
