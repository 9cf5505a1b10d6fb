"""The run document: its shape, the transaction record of a change, timer names.

A run is a :class:`Run` struct (a msgpack map in Redis, the same map as JSON on
the API, :meth:`Run.to_dict`): the playbook's steps copied in at start, so
editing a playbook never changes a run under way. Fields a run gets only later
(``covers``, ``aborted_by``, ``score``...) are ``UNSET`` until then and left out
of the map, so the stored and served shape is the one runs always had; a run
stored before these structs loads as one (missing fields take their defaults).
A :class:`Tx` collects what one change writes besides the run itself. Timer
members are ``run_id|step|kind|n`` (kinds ``deadline``, ``escalate``, ``wait``,
and ``fx`` for side effects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from watchfloor.core.vocabulary import FINISHED_STEP_STATES
from watchfloor.playbooks import codec
from watchfloor.playbooks.effects import AuditEffect, AuditRecord, Effect
from watchfloor.playbooks.errors import StepNotFound
from watchfloor.playbooks.schema import Playbook, Step

FINISHED: Final = frozenset(FINISHED_STEP_STATES)
SYSTEM_ROLE: Final = "system"
RUNNER: Final = "runner"


class Approval(msgspec.Struct):
    """A step's required approval: by whom it must be, and who gave it when."""

    role: str
    by: str | None = None
    at: float | None = None
    note: str | UnsetType | None = UNSET


class Escalation(msgspec.Struct):
    """A step's escalation rule, copied from the playbook."""

    after_s: float
    every_s: float
    repeat: int
    notify: list[str] = []
    roles: list[str] = []
    message: str | None = None


class StandingDown(msgspec.Struct):
    """Why and since when a run's deadlines and escalations are stopped."""

    at: float
    reason: str
    incidents: list[str]


class RunStep(msgspec.Struct, kw_only=True):
    """One step of a run: the playbook's step plus its progress."""

    id: str
    title: str
    title_zh: str
    owner: str
    state: str = "pending"
    deadline: float | None = None
    deadline_s: float | None = None
    deadline_from: str = "ready"
    needs: list[str] = []
    action: dict[str, Any] | None = None
    approval: Approval | None = None
    escalation: Escalation | None = None
    done_by: str | None = None
    done_at: float | None = None
    note: str | None = None
    escalations: int = 0
    auto_escalations: int = 0
    ready_at: float | None = None
    late: bool = False
    attempt: int = 0
    action_result: dict[str, Any] | None = None
    awaiting_approval: bool = False
    notifications: list[dict[str, Any]] = []


class Run(msgspec.Struct, kw_only=True):
    """A playbook run (``wf:run:{id}``)."""

    id: str
    playbook: str
    title: str
    title_zh: str
    incident: str | None = None
    state: str = "active"
    drill: bool = False
    started_at: float
    started_by: str
    finished_at: float | None = None
    first_ack_at: float | None = None
    standing_down: StandingDown | None = None
    fx_seq: int = 0
    values: dict[str, Any] = {}
    steps: list[RunStep] = []
    covers: list[str] | UnsetType = UNSET
    """Other incidents this run works (:mod:`playbooks.coverage`)."""
    aborted_by: str | UnsetType = UNSET
    note: str | UnsetType | None = UNSET
    """The abort note."""
    score: dict[str, Any] | UnsetType = UNSET
    """Set when the run finishes (:func:`playbooks.drill.score_run`)."""

    def to_dict(self) -> dict[str, Any]:
        """The run as the API serves it (and as the changes stream carries it)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    def step(self, step_id: str) -> RunStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise StepNotFound(f"run {self.id} has no step {step_id!r}")


def encode_run(run: Run) -> bytes:
    return codec.encode(run)


def decode_run(raw: bytes | str) -> Run:
    run: Run = codec.decode(raw, Run)
    return run


@dataclass
class Tx:
    """What a transition writes besides the run itself."""

    op: str | None = None
    """Change op on the changes stream; None: the run itself did not change."""
    timers: dict[str, float] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    effects: dict[str, Effect] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def effect(self, run: Run, step: str | None, payload: Effect, due: float) -> str:
        run.fx_seq += 1
        member = f"{run.id}|{step or '-'}|fx|{run.fx_seq}"
        self.effects[member] = payload
        self.timers[member] = due
        return member

    def audit(
        self,
        run: Run,
        step: str | None,
        now: float,
        *,
        actor: str,
        role: str,
        action: str,
        outcome: str = "ok",
        **details: Any,
    ) -> None:
        target = f"{run.id}/{step}" if step else run.id
        context = {"playbook": run.playbook, "incident": run.incident, "drill": run.drill}
        record = AuditRecord(actor, role, action, target, outcome, {**context, **details})
        self.effect(run, step, AuditEffect(record), now)

    def note(self, run: Run, now: float, event: str, actor: str, **detail: Any) -> None:
        if run.incident and not run.drill:
            self.timeline.append(
                {
                    "at": now,
                    "event": event,
                    "actor": actor,
                    "run": run.id,
                    **{k: v for k, v in detail.items() if v is not None},
                }
            )


Mutation = Callable[[Run, Tx], None]
"""A change of one run, applied under WATCH: it edits the run and records what it causes."""


def text(value: Any) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def timer(run_id: str, step: str, kind: str, n: int = 0) -> str:
    return f"{run_id}|{step}|{kind}|{n}"


def parse_timer(member: str) -> tuple[str, str, str, int]:
    run_id, step, kind, n = member.split("|")
    return run_id, step, kind, int(n)


# --- building a run -------------------------------------------------------------------


def _run_step(step: Step) -> RunStep:
    esc = step.escalation
    return RunStep(
        id=step.id,
        title=step.title_en,
        title_zh=step.title_zh,
        owner=step.owner,
        deadline_s=step.deadline_s,
        deadline_from=step.deadline_from,
        needs=list(step.needs),
        action=step.action,
        approval=Approval(step.approval) if step.approval else None,
        escalation=None
        if esc is None
        else Escalation(
            esc.after_s, esc.every_s, esc.repeat, list(esc.notify), list(esc.roles), esc.message
        ),
    )


def new_run(
    playbook: Playbook,
    run_id: str,
    incident: dict[str, Any] | None,
    *,
    actor: str,
    drill: bool,
    now: float,
) -> Run:
    info = incident or {}
    return Run(
        id=run_id,
        playbook=playbook.id,
        title=playbook.title_en,
        title_zh=playbook.title_zh,
        incident=info.get("id"),
        drill=drill,
        started_at=now,
        started_by=actor,
        values={
            **playbook.variables,
            "incident": info.get("id") or "DRILL",
            "title": info.get("title", playbook.title_en),
            "subject": info.get("subject", ""),
            "severity": info.get("severity", ""),
            "kind": info.get("kind", ""),
            "rule": info.get("rule", ""),
            "playbook": playbook.id,
            "run": run_id,
            "drill": "drill" if drill else "",
        },
        steps=[_run_step(s) for s in playbook.steps],
    )
