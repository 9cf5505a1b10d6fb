"""``GET /v1/permissions``: what the calling token may do, overall, on an incident, on a run.

A console never keeps its own copy of the access rules: it asks this endpoint
and offers exactly the actions named here. The answer is derived from the
same two sources that enforce the rules, so it cannot drift from them:

* each action's endpoint and the permission it declares (``@requires``);
* for playbook steps, ``security.roles``' step rules, which the runner's
  state machine applies too (owner role; an approval always needs the role
  the playbook names; skipping a step that waits for an approval needs that
  role as well).

The answer says what the role may do, not whether the state allows it now (a
step already done is still ``done``-able by its owner: the API answers 409).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from watchfloor.api import audit, controls, incidents, runs, tokens
from watchfloor.api.inputs import query_text
from watchfloor.api.state import INCIDENTS, runner_of
from watchfloor.playbooks.model import RunStep
from watchfloor.playbooks.state import pending_approver
from watchfloor.security.auth import PERMISSION_ATTR, get_principal, requires
from watchfloor.security.roles import (
    Permission,
    allows,
    may_approve_step,
    may_skip_step,
    may_work_step,
)

routes = web.RouteTableDef()

GLOBAL_ACTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "ack": incidents.ack_incident,
    "resolve": incidents.resolve_incident,
    "note": incidents.note_incident,
    "open_incident": incidents.create_incident,
    "silence": controls.create_silence,
    "start_playbook": runs.start_run,
    "read_audit": audit.list_audit,
    "manage_tokens": tokens.create_token,
}
INCIDENT_ACTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "ack": incidents.ack_incident,
    "resolve": incidents.resolve_incident,
    "note": incidents.note_incident,
    "start_playbook": runs.start_run,
    "silence": controls.create_silence,
}
RUN_ACTIONS: Final[Mapping[str, Callable[..., Any]]] = {"abort": runs.abort_run}
STEP_ENDPOINTS: Final[Mapping[str, Callable[..., Any]]] = {
    "done": runs.step_done,
    "escalate": runs.step_escalate,
    "retry": runs.step_retry,
    "approve": runs.step_approve,
    "skip": runs.step_skip,
}


def _gate_allows(role: str, handler: Callable[..., Any]) -> bool:
    """The permission the endpoint declares, as the auth gate checks it."""
    permission: Permission | None = getattr(handler, PERMISSION_ATTR, None)
    return permission is not None and allows(role, permission)


def allowed(role: str, actions: Mapping[str, Callable[..., Any]]) -> list[str]:
    return [name for name, handler in actions.items() if _gate_allows(role, handler)]


def step_actions(role: str, step: Mapping[str, Any]) -> list[str]:
    """What ``role`` may do to ``step`` (a run's step as the runner stores it)."""
    owner = str(step.get("owner") or "")
    approval = step.get("approval") or {}
    rules: dict[str, bool] = {
        "done": may_work_step(role, owner),
        "escalate": may_work_step(role, owner),
        "retry": may_work_step(role, owner),
        "approve": bool(approval) and may_approve_step(role, str(approval.get("role"))),
        "skip": may_skip_step(role, pending_approver(msgspec.convert(dict(step), RunStep))),
    }
    return [name for name, ok in rules.items() if ok and _gate_allows(role, STEP_ENDPOINTS[name])]


def run_permissions(role: str, run: Mapping[str, Any]) -> dict[str, Any]:
    steps = run.get("steps") or []
    return {
        "id": run.get("id"),
        "actions": allowed(role, RUN_ACTIONS),
        "steps": {str(s.get("id")): step_actions(role, s) for s in steps},
    }


@routes.get("/v1/permissions")
@requires(Permission.READ_BOARD)
async def permissions(request: web.Request) -> web.Response:
    """``{"role", "actions", "incident"?: {"id", "actions"}, "run"?: {"id", "actions", "steps"}}``.

    Query ``incident`` and ``run`` (ids, optional): 404 when either is unknown.
    """
    role = get_principal(request).role
    body: dict[str, Any] = {"role": role, "actions": allowed(role, GLOBAL_ACTIONS)}
    incident_id = query_text(request, "incident", max_len=128)
    if incident_id is not None:
        incident = await request.app[INCIDENTS].get(incident_id)
        body["incident"] = {"id": incident.id, "actions": allowed(role, INCIDENT_ACTIONS)}
    run_id = query_text(request, "run", max_len=128)
    if run_id is not None:
        body["run"] = run_permissions(role, await runner_of(request).get(run_id))
    return web.json_response(body)
