"""One place decides: ``GET /v1/permissions`` says exactly what the API then accepts.

Against a real API on a real Redis with the real runner and library: the
data-leak playbook's approval steps cannot be skipped past the security
officer, and for every role, step and action the endpoint's answer agrees
with what the action endpoint itself does (allowed ⇔ not 403).
"""

from __future__ import annotations

import secrets

import pytest

from tests.api.test_api_support import ApiStack, api_fixture

api = api_fixture()

STEP_ACTIONS = ("done", "escalate", "approve", "skip", "retry")
ROLES = ("viewer", "oncall", "duty_manager", "security_officer", "admin")


async def leak_run(api: ApiStack) -> tuple[str, dict]:
    subject = f"agent-{secrets.token_hex(4)}"
    incident = await api.fire(subject, "critical", kind="leak", rule="leak.pii",
                              title="PII sent to a customer")  # fmt: skip
    return incident.id, await api.start_run(incident.id, "data-leak")


def step(run: dict, step_id: str) -> dict:
    return next(s for s in run["steps"] if s["id"] == step_id)


async def test_a_duty_manager_cannot_skip_a_step_waiting_for_the_security_officers_approval(api):
    _, run = await leak_run(api)
    url = f"/v1/runs/{run['id']}/steps/security-approval/skip"
    status, body = await api.call("POST", url, "duty_manager", body={"note": "no time"})
    assert status == 403 and "security_officer" in body["error"], body
    after = step(await api.runner.get(run["id"]), "security-approval")
    assert after["state"] != "skipped" and after["approval"]["by"] is None
    status, _ = await api.call("POST", url, "security_officer", body={"note": "x"})
    assert status == 403  # approving is theirs, skipping is not
    status, _ = await api.call("POST", url, "admin", body={"note": "board decision"})
    assert status == 200


async def test_once_approved_a_step_may_be_skipped_by_the_duty_manager(api):
    _, run = await leak_run(api)
    base = f"/v1/runs/{run['id']}/steps/security-approval"
    assert (await api.call("POST", base + "/approve", "security_officer", body={}))[0] == 200
    status, body = await api.call("POST", base + "/skip", "duty_manager", body={"note": "n"})
    assert status == 200, body


async def test_the_security_officer_is_told_they_may_approve_and_the_duty_manager_not_to_skip(api):
    incident_id, run = await leak_run(api)
    query = f"/v1/permissions?incident={incident_id}&run={run['id']}"
    status, officer = await api.call("GET", query, "security_officer")
    assert status == 200
    assert "approve" in officer["run"]["steps"]["security-approval"]
    assert "skip" not in officer["run"]["steps"]["security-approval"]
    assert officer["actions"] == ["read_audit"] and officer["incident"]["actions"] == []
    _, manager = await api.call("GET", query, "duty_manager")
    assert "skip" not in manager["run"]["steps"]["security-approval"]
    assert "skip" in manager["run"]["steps"]["contain"]
    assert "approve" not in manager["run"]["steps"]["security-approval"]
    assert set(manager["incident"]["actions"]) == {"ack", "resolve", "note", "start_playbook",
                                                   "silence"}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
async def test_what_the_endpoint_allows_is_exactly_what_the_api_accepts(api, role):
    incident_id, run = await leak_run(api)
    _, told = await api.call("GET", f"/v1/permissions?run={run['id']}", role)
    for step_id in [s["id"] for s in run["steps"]]:
        for action in STEP_ACTIONS:
            _, fresh = await leak_run(api)  # each action on a run of its own
            body = None if action == "retry" else {"note": "n"}
            status, reply = await api.call(
                "POST", f"/v1/runs/{fresh['id']}/steps/{step_id}/{action}", role, body=body
            )
            offered = action in told["run"]["steps"][step_id]
            if action == "approve" and not step(run, step_id)["approval"]:
                assert status in (403, 409) and not offered  # nothing to approve: not offered
                continue
            assert (status != 403) == offered, (role, step_id, action, status, reply)
    _, told = await api.call("GET", f"/v1/permissions?incident={incident_id}", role)
    for action, path in (("note", "note"), ("ack", "ack"), ("resolve", "resolve")):
        status, _ = await api.call("POST", f"/v1/incidents/{incident_id}/{path}", role,
                                   body={"note": "n"})  # fmt: skip
        assert (status != 403) == (action in told["incident"]["actions"]), (role, action)


async def test_unknown_ids_are_404_and_bad_ones_400(api):
    assert (await api.call("GET", "/v1/permissions?incident=INC-NOPE", "viewer"))[0] == 404
    assert (await api.call("GET", "/v1/permissions?run=RUN-NOPE", "viewer"))[0] == 404
    assert (await api.call("GET", "/v1/permissions?run=" + "r" * 500, "viewer"))[0] == 400
    assert (await api.call("GET", "/v1/permissions", None))[0] == 401
