"""Playbook runs through the API, driven by the real ``PlaybookRunner``."""

from __future__ import annotations

import json

import pytest

from tests.api.test_api_support import api_fixture, start_api

api = api_fixture()


def step(run: dict, step_id: str) -> dict:
    return next(s for s in run["steps"] if s["id"] == step_id)


async def test_a_duty_manager_starts_a_playbook_and_oncall_works_its_first_step(api):
    inc = (await api.fire()).id
    status, run = await api.call("POST", "/v1/runs", "duty_manager",
                                 body={"playbook": "sla-breach", "incident": inc})  # fmt: skip
    assert status == 201
    assert (run["playbook"], run["incident"], run["state"], run["drill"]) == (
        "sla-breach", inc, "active", False)  # fmt: skip

    status, after = await api.call("POST", f"/v1/runs/{run['id']}/steps/check-queue/done",
                                   "oncall", body={"note": "12 waiting, 2 agents"})  # fmt: skip
    assert status == 200
    assert step(after, "check-queue")["state"] == "done"
    assert step(after, "check-queue")["done_by"] == "t-oncall"

    listed = (await api.call("GET", "/v1/runs", "viewer"))[1]["runs"]
    assert [r["id"] for r in listed] == [run["id"]]
    detail = (await api.call("GET", f"/v1/runs/{run['id']}", "viewer"))[1]
    assert step(detail, "check-queue")["note"] == "12 waiting, 2 agents"


async def test_run_operations_are_audited_once_by_the_runner(api):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    await api.call("POST", f"/v1/runs/{run['id']}/steps/check-queue/done", "oncall")
    done = [r for r in await api.audit.read() if r["action"] == "run.step.done"]
    assert [(r["actor"], r["role"]) for r in done] == [("t-oncall", "oncall")]


async def test_escalating_a_step_counts_an_escalation(api):
    run = await api.start_run((await api.fire()).id)
    status, after = await api.call("POST", f"/v1/runs/{run['id']}/steps/check-queue/escalate",
                                   "oncall", body={"note": "no agents free"})  # fmt: skip
    assert status == 200
    assert step(after, "check-queue")["escalations"] >= 1


REFUSALS = [
    ("POST", "/v1/runs/{run}/steps/watch-recovery/done", "oncall", None, 409, "waits for"),
    ("POST", "/v1/runs/{run}/steps/no-such-step/done", "oncall", None, 404, "no-such-step"),
    ("POST", "/v1/runs/RUN-19990101-00001/steps/check-queue/done", "oncall", None, 404, "run"),
    ("GET", "/v1/runs/RUN-19990101-00001", "viewer", None, 404, "run"),
    ("POST", "/v1/runs", "duty_manager", {"playbook": "no-such", "incident": "{inc}"}, 404, ""),
    ("POST", "/v1/runs", "duty_manager", {"playbook": "sla-breach", "incident": "INC-x"}, 404,
     "incident"),
    ("POST", "/v1/runs", "duty_manager", {"playbook": "sla-breach", "incident": "{inc}"}, 409,
     "already"),
    ("POST", "/v1/runs", "duty_manager", {"playbook": "sla-breach"}, 409, "needs an incident"),
    ("POST", "/v1/runs/{run}/steps/check-queue/approve", "oncall", None, 409, "no approval"),
    ("POST", "/v1/runs/{run}/steps/check-queue/skip", "oncall", None, 403, "may not"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "role", "body", "status", "words"), REFUSALS)
async def test_impossible_run_operations_are_refused_with_the_reason(
    api, method, path, role, body, status, words
):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    names = {"{run}": run["id"], "{inc}": inc}
    for name, value in names.items():
        path = path.replace(name, value)
    body = json.loads(json.dumps(body).replace("{inc}", inc)) if body else None
    got, reply = await api.call(method, path, role, body=body)
    assert (got, words in reply["error"]) == (status, True), reply


async def test_a_drill_needs_no_incident(api):
    status, run = await api.call("POST", "/v1/runs", "duty_manager",
                                 body={"playbook": "network-outage", "drill": True})  # fmt: skip
    assert (status, run["drill"], run["incident"]) == (201, True, None)


async def test_a_duty_manager_aborts_a_run(api):
    run = await api.start_run((await api.fire()).id)
    status, after = await api.call("POST", f"/v1/runs/{run['id']}/abort", "duty_manager",
                                   body={"note": "false alarm"})  # fmt: skip
    assert (status, after["state"]) == (200, "aborted")


async def test_without_a_runner_run_endpoints_say_so(redis_url, serve_app, data_dir):
    stack, redis = await start_api(redis_url, serve_app, data_dir, with_runner=False)
    try:
        for method, path in [("GET", "/v1/runs"), ("POST", "/v1/runs/R/steps/s/done")]:
            assert await stack.call(method, path, "admin") == (
                503, {"error": "playbook runner not available"})  # fmt: skip
    finally:
        await stack.session.close()
        await redis.aclose()


async def test_the_security_officer_approves_and_works_their_data_leak_steps_over_the_api(api):
    inc = (await api.fire(subject="agent-017", kind="leak", rule="leak.pii",
                          title="Customer ID sent by agent-017")).id  # fmt: skip
    run = await api.start_run(inc, playbook="data-leak")
    path = f"/v1/runs/{run['id']}/steps"
    for step_id in ("contain", "tell-security", "preserve-evidence"):
        status, _ = await api.call("POST", f"{path}/{step_id}/done", "oncall")
        assert status == 200, step_id
    status, after = await api.call("POST", f"{path}/security-approval/done", "duty_manager")
    assert status == 200 and step(after, "security-approval")["awaiting_approval"]
    # the duty manager may not approve their own handling; the security officer may
    status, reply = await api.call("POST", f"{path}/security-approval/approve", "duty_manager")
    assert status == 403 and "security_officer" in reply["error"]
    approve = f"{path}/security-approval/approve"
    note = {"note": "approved: suspend"}
    status, after = await api.call("POST", approve, "security_officer", body=note)
    assert status == 200 and step(after, "security-approval")["state"] == "done"
    status, after = await api.call("POST", f"{path}/assess-scope/done", "security_officer")
    assert status == 200 and step(after, "assess-scope")["state"] == "done"
    # a viewer works no step at all
    status, _ = await api.call("POST", f"{path}/notify-as-required/escalate", "viewer")
    assert status == 403


async def test_a_run_stands_down_as_soon_as_a_person_resolves_its_only_incident(api):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    assert not run.get("standing_down")
    status, _ = await api.call("POST", f"/v1/incidents/{inc}/resolve", "duty_manager",
                               body={"note": "queue drained"})  # fmt: skip
    assert status == 200
    after = (await api.call("GET", f"/v1/runs/{run['id']}", "viewer"))[1]
    assert after["standing_down"]["reason"]
    assert inc in json.dumps(after["standing_down"])
    stood = [r for r in await api.audit.read() if r["action"] == "run.stand_down"]
    assert [r["target"] for r in stood] == [run["id"]]
