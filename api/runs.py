"""Playbook run endpoints: list, detail, start, and a step's done / escalate / approve.

The handlers delegate to the ``playbooks.runner.PlaybookRunner`` held in the
app (503 ``playbook runner not available`` without one). The runner checks the
step's owner role, audits every run change itself and writes the change to the
changes stream, so these handlers do not audit (no double records). Its errors
(unknown run, step or playbook 404, conflict 409, not allowed 403) are mapped
by :mod:`api.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from watchfloor.api.inputs import MAX_NOTE, Field, path_id, query_int, query_text, read_fields
from watchfloor.api.state import runner_of
from watchfloor.playbooks.state import STEP_OPS
from watchfloor.security.auth import get_principal, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_RUNS: Final = 1000
NOTE: Final = Field("note", str, max_len=MAX_NOTE, mask=True)
Handler = Callable[[web.Request], Awaitable[web.Response]]


@routes.get("/v1/runs")
@requires(Permission.READ_BOARD)
async def list_runs(request: web.Request) -> web.Response:
    """``{"runs": [run...]}``; optional ``state`` and ``limit`` (default 200)."""
    state = query_text(request, "state", max_len=40)
    limit = query_int(request, "limit", 200, 1, MAX_RUNS)
    runs = await runner_of(request).list(state=state, limit=limit)
    return web.json_response({"runs": runs})


@routes.get("/v1/runs/{id}")
@requires(Permission.READ_BOARD)
async def get_run(request: web.Request) -> web.Response:
    runner = runner_of(request)
    return web.json_response(await runner.get(path_id(request, "id")))


@routes.post("/v1/runs")
@requires(Permission.START_PLAYBOOK)
async def start_run(request: web.Request) -> web.Response:
    """Start a playbook by hand; body ``{"playbook", "incident"?, "drill"?}``; 201 the run.

    ``incident`` may be left out only for a drill (the runner refuses otherwise).
    """
    runner = runner_of(request)
    values = await read_fields(
        request,
        Field("playbook", str, required=True, max_len=128),
        Field("incident", str, max_len=128),
        Field("drill", bool),
    )
    principal = get_principal(request)
    run = await runner.start(
        values["playbook"],
        values.get("incident"),
        actor=principal.name,
        role=principal.role,
        drill=values.get("drill", False),
    )
    logger.info("run started id=%s playbook=%s actor=%s", run.get("id"), values["playbook"],
                principal.name)  # fmt: skip
    return web.json_response(run, status=201)


def _step_endpoint(name: str, doc: str) -> Handler:
    """The endpoint of the step operation ``name``, gated by the table's permission."""
    op = STEP_OPS[name]

    async def endpoint(request: web.Request) -> web.Response:
        runner = runner_of(request)
        run_id = path_id(request, "id")
        step_id = path_id(request, "step")
        # An operation without a note (retry) takes an empty body only.
        values = await read_fields(request, NOTE) if op.takes_note else await read_fields(request)
        principal = get_principal(request)
        run = await runner.step(
            name,
            run_id,
            step_id,
            actor=principal.name,
            role=principal.role,
            note=values.get("note"),
        )
        logger.info("run step %s run=%s step=%s actor=%s", name, run_id, step_id, principal.name)
        return web.json_response(run)

    endpoint.__name__ = endpoint.__qualname__ = f"step_{name}"
    endpoint.__doc__ = doc
    routes.post(f"/v1/runs/{{id}}/steps/{{step}}/{name}")(endpoint)
    return requires(op.permission)(endpoint)


# The runner checks the step's owner / approver role behind the gate's permission.
step_done = _step_endpoint("done", "Mark a step done; body ``{note?}``; returns the run.")
step_escalate = _step_endpoint("escalate", "Escalate a step now; body ``{note?}``; the run.")
step_approve = _step_endpoint("approve", "Approve a step; body ``{note?}``; returns the run.")
step_skip = _step_endpoint("skip", "Skip a step (duty manager); body ``{note?}``; the run.")
step_retry = _step_endpoint("retry", "Retry a step's failed action; empty body; the run.")


@routes.post("/v1/runs/{id}/abort")
@requires(Permission.START_PLAYBOOK)
async def abort_run(request: web.Request) -> web.Response:
    """Abort a run; body ``{"note"?}``; returns the run."""
    runner = runner_of(request)
    run_id = path_id(request, "id")
    values = await read_fields(request, NOTE)
    principal = get_principal(request)
    run = await runner.abort(run_id, actor=principal.name, role=principal.role,
                             note=values.get("note"))  # fmt: skip
    logger.info("run aborted run=%s actor=%s", run_id, principal.name)
    return web.json_response(run)
