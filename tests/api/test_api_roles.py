"""The role matrix over every monitor API endpoint: allowed, 403, and 401 without a good token.

"Allowed" means the request got past the gate: any answer but 401/403 (a
second ack of the same incident is a 409, a run endpoint without a runner a
503); a 500 is never acceptable.
"""

from __future__ import annotations

import pytest

from tests.api.test_api_support import ADMIN_BOOTSTRAP, ApiStack, api_fixture
from watchfloor.security.roles import ROLES, Permission

P = Permission

# DESIGN.md's recommended matrix, written out here rather than read from security.roles,
# so that a change to either shows up as a failing test.
MATRIX = {
    "producer": {P.SEND_EVENTS},
    "viewer": {P.READ_BOARD},
    "oncall": {P.READ_BOARD, P.RUN_STEPS},
    "duty_manager": {P.READ_BOARD, P.ACK, P.RUN_STEPS, P.START_PLAYBOOK},
    "security_officer": {P.READ_BOARD, P.READ_AUDIT},
    "admin": set(P),
}

ENDPOINTS = [
    ("GET", "/v1/whoami", P.READ_BOARD, None),
    ("GET", "/v1/incidents", P.READ_BOARD, None),
    ("GET", "/v1/incidents/{inc}", P.READ_BOARD, None),
    ("POST", "/v1/incidents/{inc}/ack", P.ACK, {"note": "on it"}),
    ("POST", "/v1/incidents/{inc}/resolve", P.ACK, {}),
    ("POST", "/v1/incidents/{inc}/note", P.ACK, {"note": "still slow"}),
    ("POST", "/v1/incidents", P.ACK, {"title": "t", "severity": "minor", "subject": "s"}),
    ("GET", "/v1/queues", P.READ_BOARD, None),
    ("GET", "/v1/health", P.READ_BOARD, None),
    ("GET", "/v1/flags", P.READ_BOARD, None),
    ("PUT", "/v1/flags/auto_reply", P.ACK, {"value": "on"}),
    ("GET", "/v1/silences", P.READ_BOARD, None),
    (
        "POST",
        "/v1/silences",
        P.ACK,
        {"matchers": {"subject": "q*"}, "duration_s": 60, "reason": "planned maintenance"},
    ),
    ("DELETE", "/v1/silences/sil-none", P.ACK, None),
    ("GET", "/v1/runs", P.READ_BOARD, None),
    ("GET", "/v1/runs/{run}", P.READ_BOARD, None),
    ("POST", "/v1/runs", P.START_PLAYBOOK, {"playbook": "sla-breach", "incident": "{inc}"}),
    ("POST", "/v1/runs/{run}/steps/check-queue/done", P.RUN_STEPS, {}),
    ("POST", "/v1/runs/{run}/steps/check-queue/escalate", P.RUN_STEPS, {}),
    ("POST", "/v1/runs/{run}/steps/check-queue/approve", P.RUN_STEPS, {}),
    ("POST", "/v1/runs/{run}/steps/check-queue/retry", P.RUN_STEPS, {}),
    ("POST", "/v1/runs/{run}/steps/add-agents/skip", P.START_PLAYBOOK, {}),
    ("POST", "/v1/runs/{run}/abort", P.START_PLAYBOOK, {"note": "drill over"}),
    ("GET", "/v1/audit", P.READ_AUDIT, None),
    ("GET", "/v1/audit?after=0&action=incident", P.READ_AUDIT, None),
    ("GET", "/v1/audit/verify", P.READ_AUDIT, None),
    ("GET", "/v1/tokens", P.MANAGE_TOKENS, None),
    ("POST", "/v1/tokens", P.MANAGE_TOKENS, {"name": "new-{role}", "role": "viewer"}),
    ("DELETE", "/v1/tokens/nobody", P.MANAGE_TOKENS, None),
    ("GET", "/v1/live", P.READ_BOARD, None),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


api = api_fixture()


def fill(value, names: dict[str, str]):
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


async def answer(api: ApiStack, method: str, path: str, body, role: str | None, token=None):
    """One request with ``{inc}``, ``{run}``, ``{role}`` filled in (an open incident, its run)."""
    inc = (await api.fire()).id
    run = await api.runner.run_for_incident(inc) or (await api.start_run(inc))["id"]
    names = {"inc": inc, "run": run, "role": (role or "").replace("_", "-")}
    return await api.call(method, fill(path, names), role, token=token, body=fill(body, names))


@pytest.mark.parametrize(("method", "path", "permission", "body"), ENDPOINTS, ids=IDS)
async def test_each_role_reaches_exactly_the_endpoints_its_permissions_allow(
    api, method, path, permission, body
):
    outcomes = {}
    for role in sorted(ROLES):
        status, reply = await answer(api, method, path, body, role)
        assert status != 500, (role, reply)
        outcomes[role] = "403" if status == 403 else ("401" if status == 401 else "allowed")
    expected = {r: "allowed" if permission in MATRIX[r] else "403" for r in sorted(ROLES)}
    assert outcomes == expected


@pytest.mark.parametrize(("method", "path", "permission", "body"), ENDPOINTS, ids=IDS)
async def test_every_endpoint_refuses_a_missing_or_bad_token_with_401(
    api, method, path, permission, body
):
    for token in (None, "wf_not-a-real-token", "", "x" * 5000):
        status, reply = await answer(api, method, path, body, None, token=token)
        assert status == 401, (token and token[:20], reply)
        assert reply["error"]


def test_the_matrix_covers_every_role():
    assert set(MATRIX) == set(ROLES)


async def test_a_revoked_token_is_refused_at_once(api):
    await api.token_store.revoke("t-viewer")
    status, _ = await api.call("GET", "/v1/incidents", "viewer")
    assert status == 401


async def test_the_bootstrap_admin_token_is_an_admin(api):
    status, body = await api.call("GET", "/v1/whoami", None, token=ADMIN_BOOTSTRAP)
    assert (status, body["role"]) == (200, "admin")


async def test_service_endpoints_need_no_token(api):
    for path in ("/healthz", "/metrics"):
        assert (await api.call("GET", path, None))[0] == 200
