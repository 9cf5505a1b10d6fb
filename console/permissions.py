"""What the signed-in token may do, as the API says it (``GET /v1/permissions``).

The console keeps no access rules of its own: it offers a key when the API's
last answer lists its action, for the whole console, for the incident shown,
for its run, or for the selected step. The tables below only translate the
console's action names into the API's (a naming table, not a rule); an action
missing from them is not guarded (navigation, sorting, help).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

APP_ACTIONS: Final = {
    "show_audit": "read_audit",
    "open_incident": "open_incident",
    "expire_silence": "silence",
}
INCIDENT_ACTIONS: Final = {
    "acknowledge": "ack",
    "resolve": "resolve",
    "add_note": "note",
    "start_playbook": "start_playbook",
    "silence": "silence",
}
RUN_ACTIONS: Final = {"abort_run": "abort"}
STEP_ACTIONS: Final = {
    "step_done": "done",
    "escalate": "escalate",
    "approve": "approve",
    "skip_step": "skip",
    "retry_step": "retry",
}
GUARDED: Final = frozenset({*APP_ACTIONS, *INCIDENT_ACTIONS, *RUN_ACTIONS, *STEP_ACTIONS})


def _names(value: Any) -> frozenset[str]:
    return frozenset(str(v) for v in value) if isinstance(value, list) else frozenset()


@dataclass(frozen=True, slots=True)
class Allowed:
    """One answer of ``GET /v1/permissions``; empty (nothing offered) until it came."""

    overall: frozenset[str] = frozenset()
    incident: frozenset[str] = frozenset()
    run: frozenset[str] = frozenset()
    steps: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> Allowed:
        incident = answer.get("incident") or {}
        run = answer.get("run") or {}
        steps = run.get("steps")
        steps = steps if isinstance(steps, dict) else {}
        return cls(
            overall=_names(answer.get("actions")),
            incident=_names(incident.get("actions")),
            run=_names(run.get("actions")),
            steps={str(k): _names(v) for k, v in steps.items()},
        )

    def may_anywhere(self, action: str) -> bool | None:
        """Without an incident in view: the overall answer; None for step and run actions."""
        if action in APP_ACTIONS:
            return APP_ACTIONS[action] in self.overall
        if action in INCIDENT_ACTIONS:
            return INCIDENT_ACTIONS[action] in self.overall
        return None if action in GUARDED else True

    def may(self, action: str, step: str | None = None) -> bool:
        """May the console's ``action`` be offered (on ``step`` for a step action)?"""
        if action in APP_ACTIONS:
            return APP_ACTIONS[action] in self.overall
        if action in INCIDENT_ACTIONS:
            return INCIDENT_ACTIONS[action] in self.incident
        if action in RUN_ACTIONS:
            return RUN_ACTIONS[action] in self.run
        if action in STEP_ACTIONS:
            if step is None:  # no step chosen: offered if some step allows it
                return any(STEP_ACTIONS[action] in names for names in self.steps.values())
            return STEP_ACTIONS[action] in self.steps.get(step, frozenset())
        return True
