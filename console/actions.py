"""The commands the console sends to the API: which call, which success message.

Kept apart from the app so the table of actions is read in one place. Which
of them the token may use is the API's answer (``console.permissions``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from watchfloor.console.client import ApiClient


@dataclass(frozen=True, slots=True)
class Command:
    call: Callable[..., Awaitable[dict[str, Any]]]
    done: str
    """i18n key of the message shown when it succeeded."""
    kind: str
    """What the answer is (``incident`` or ``run``): applied to the board at once."""


def commands(api: ApiClient) -> dict[str, Command]:
    return {
        "acknowledge": Command(api.acknowledge, "done.ack", "incident"),
        "resolve": Command(api.resolve, "done.resolve", "incident"),
        "add_note": Command(api.add_note, "done.note", "incident"),
        "step_done": Command(api.step_done, "done.step", "run"),
        "escalate": Command(api.step_escalate, "done.escalate", "run"),
        "approve": Command(api.step_approve, "done.approve", "run"),
        "start_playbook": Command(api.start_run, "done.start", "run"),
        "skip_step": Command(api.step_skip, "done.skip", "run"),
        "abort_run": Command(api.abort_run, "done.abort", "run"),
        "open_incident": Command(api.create_incident, "done.open", "incident"),
        "silence": Command(api.silence, "done.silence", "silence"),
        "expire_silence": Command(api.expire_silence, "done.expire", "silence"),
        "retry_step": Command(api.step_retry, "done.retry", "run"),
    }


def done_values(name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The values the success message names (``{id}``, ``{step}``, ``{pb}``)."""
    if name in ("step_done", "escalate", "approve", "skip_step", "retry_step"):
        return {"step": args[1]}
    if name == "start_playbook":
        return {"pb": args[0]}
    if name == "silence":
        return {"minutes": round(args[1] / 60)}
    return {"id": args[0]}
