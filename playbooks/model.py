"""The run document: its shape, the transaction record of a change, timer names.

A run is a plain dict (msgpack in Redis, JSON on the API): the playbook's steps
copied in at start, so editing a playbook never changes a run under way. A
:class:`Tx` collects what one change writes besides the run itself. Timer
members are ``run_id|step|kind|n`` (kinds ``deadline``, ``escalate``, ``wait``,
and ``fx`` for side effects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from core.vocabulary import FINISHED_STEP_STATES
from playbooks.errors import StepNotFound
from playbooks.schema import Playbook, Step

FINISHED: Final = frozenset(FINISHED_STEP_STATES)
SYSTEM_ROLE: Final = "system"
RUNNER: Final = "runner"


@dataclass
class Tx:
    """What a transition writes besides the run itself."""

    op: str | None = None
    """Change op on the changes stream; None: the run itself did not change."""
    timers: dict[str, float] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def effect(
        self, run: dict[str, Any], step: str | None, payload: dict[str, Any], due: float
    ) -> str:
        run["fx_seq"] = run.get("fx_seq", 0) + 1
        member = f"{run['id']}|{step or '-'}|fx|{run['fx_seq']}"
        self.effects[member] = payload
        self.timers[member] = due
        return member

    def audit(
        self,
        run: dict[str, Any],
        step: str | None,
        now: float,
        *,
        actor: str,
        role: str,
        action: str,
        outcome: str = "ok",
        **details: Any,
    ) -> None:
        target = f"{run['id']}/{step}" if step else run["id"]
        record = {
            "actor": actor,
            "role": role,
            "action": action,
            "target": target,
            "outcome": outcome,
            "details": {
                "playbook": run["playbook"],
                "incident": run["incident"],
                "drill": run["drill"],
                **details,
            },
        }
        self.effect(run, step, {"type": "audit", "record": record}, now)

    def note(self, run: dict[str, Any], now: float, event: str, actor: str, **detail: Any) -> None:
        if run.get("incident") and not run["drill"]:
            self.timeline.append(
                {
                    "at": now,
                    "event": event,
                    "actor": actor,
                    "run": run["id"],
                    **{k: v for k, v in detail.items() if v is not None},
                }
            )


Mutation = Callable[[dict[str, Any], Tx], None]
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


def _step_dict(step: Step) -> dict[str, Any]:
    esc = step.escalation
    return {
        "id": step.id,
        "title": step.title_en,
        "title_zh": step.title_zh,
        "owner": step.owner,
        "state": "pending",
        "deadline": None,
        "deadline_s": step.deadline_s,
        "deadline_from": step.deadline_from,
        "needs": list(step.needs),
        "action": step.action,
        "approval": {"role": step.approval, "by": None, "at": None} if step.approval else None,
        "escalation": None
        if esc is None
        else {
            "after_s": esc.after_s,
            "every_s": esc.every_s,
            "repeat": esc.repeat,
            "notify": list(esc.notify),
            "roles": list(esc.roles),
            "message": esc.message,
        },
        "done_by": None,
        "done_at": None,
        "note": None,
        "escalations": 0,
        "auto_escalations": 0,
        "ready_at": None,
        "late": False,
        "attempt": 0,
        "action_result": None,
        "awaiting_approval": False,
        "notifications": [],
    }


def new_run(
    playbook: Playbook,
    run_id: str,
    incident: dict[str, Any] | None,
    *,
    actor: str,
    drill: bool,
    now: float,
) -> dict[str, Any]:
    info = incident or {}
    return {
        "id": run_id,
        "playbook": playbook.id,
        "title": playbook.title_en,
        "title_zh": playbook.title_zh,
        "incident": info.get("id"),
        "state": "active",
        "drill": drill,
        "started_at": now,
        "started_by": actor,
        "finished_at": None,
        "first_ack_at": None,
        "standing_down": None,
        "fx_seq": 0,
        "values": {
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
        "steps": [_step_dict(s) for s in playbook.steps],
    }


def find_step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    for step in run["steps"]:
        if step["id"] == step_id:
            return step
    raise StepNotFound(f"run {run['id']} has no step {step_id!r}")
