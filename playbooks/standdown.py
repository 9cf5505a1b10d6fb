"""A run stands down when every incident it works is resolved, and resumes when one is back.

Escalations that keep paging management for a problem the engine (or a person)
has already resolved teach people to ignore pages. So a run whose incidents
(the one it started for and those it ``covers``) are all resolved stops its
deadlines and escalations: it gets ``standing_down`` (when and why, shown on the
run and on the incident's timeline, audited as ``run.stand_down``) and its due
deadline and escalation timers change nothing. People can still work and finish
its steps. An incident of the same problem that opens again (a reopened one is
covered by this run) resumes it (``run.resume``): deadlines that have not
passed are armed again, late steps escalate again.

Pure functions over a run, like :mod:`playbooks.state`.
"""

from __future__ import annotations

from watchfloor.playbooks.model import (
    FINISHED,
    RUNNER,
    SYSTEM_ROLE,
    Run,
    RunStep,
    StandingDown,
    Tx,
    timer,
)


def incidents_of(run: Run) -> list[str]:
    """Every incident the run works: the one it started for and those it covers."""
    first = [run.incident] if run.incident else []
    covers = run.covers or []
    return first + [i for i in covers if i not in first]


def stand_down(run: Run, tx: Tx, now: float, resolved: list[str]) -> None:
    """Stop deadlines and escalations: every incident of the run is resolved."""
    if run.state != "active" or run.drill or run.standing_down:
        return
    reason = f"all its incidents are resolved ({', '.join(resolved)})"
    run.standing_down = StandingDown(now, reason, list(resolved))
    tx.op = "standing_down"
    tx.audit(run, None, now, actor=RUNNER, role=SYSTEM_ROLE, action="run.stand_down", reason=reason)
    tx.note(run, now, "playbook_standing_down", RUNNER, note=reason)


def resume(run: Run, tx: Tx, now: float, incident_id: str) -> None:
    """An incident of the run's problem is open again: deadlines and escalations resume."""
    if run.state != "active" or not run.standing_down:
        return
    run.standing_down = None
    reason = f"{incident_id} is open"
    tx.op = "resumed"
    tx.audit(run, None, now, actor=RUNNER, role=SYSTEM_ROLE, action="run.resume", reason=reason)
    tx.note(run, now, "playbook_resumed", RUNNER, note=reason)
    for step in run.steps:
        if step.state not in FINISHED:
            _rearm(run, step, tx, now)


def _rearm(run: Run, step: RunStep, tx: Tx, now: float) -> None:
    # The timers that came due while standing down were dropped: arm the next ones.
    if step.deadline is not None and not step.late:
        tx.timers[timer(run.id, step.id, "deadline")] = max(step.deadline, now)
        return
    esc = step.escalation
    n = step.auto_escalations
    if step.late and esc and n < esc.repeat:
        due = now + esc.every_s if n else now
        tx.timers[timer(run.id, step.id, "escalate", n + 1)] = due
