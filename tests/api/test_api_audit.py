"""The security officer's audit endpoints and the admin's token endpoints."""

from __future__ import annotations

import json

import pytest

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.core import keys

api = api_fixture()


async def seed(api: ApiStack) -> None:
    for n in range(3):
        inc = (await api.fire(f"q{n}")).id
        await api.call("POST", f"/v1/incidents/{inc}/ack", "duty_manager")
    await api.call("POST", "/v1/tokens", "admin", body={"name": "robot", "role": "producer"})


AUDIT_QUERIES = [
    ("", 4),
    ("?action=incident", 3),
    ("?action=incident.ack", 3),
    ("?action=token.create", 1),
    ("?action=incident.resolve", 0),
    ("?actor=admin-token", 0),
    ("?actor=t-admin", 1),
    ("?after=2", 2),
    ("?after=1&limit=2", 2),
    ("?after=4", 0),
]


@pytest.mark.parametrize(("query", "count"), AUDIT_QUERIES)
async def test_the_audit_tail_filters_by_sequence_actor_and_action(api, query, count):
    await seed(api)
    status, body = await api.call("GET", "/v1/audit" + query, "security_officer")
    assert status == 200
    assert len(body["records"]) == count
    seqs = [r["seq"] for r in body["records"]]
    assert seqs == sorted(seqs)
    assert {"seq", "at", "actor", "role", "action", "target", "hash"} <= set(
        body["records"][0] if body["records"] else {"seq", "at", "actor", "role", "action",
                                                    "target", "hash"})  # fmt: skip


async def test_a_filtered_tail_reports_how_far_it_looked(api):
    await seed(api)
    status, body = await api.call("GET", "/v1/audit?action=nothing.like.this", "admin")
    assert (status, body["records"], body["next_after"]) == (200, [], 4)


async def test_verification_passes_on_an_untouched_log_and_names_a_tampered_record(api):
    await seed(api)
    await api.audit.checkpoint()
    status, body = await api.call("GET", "/v1/audit/verify", "security_officer")
    assert status == 200
    assert (body["ok"], body["verified_upto"], body["last_checkpoint_seq"]) == (True, 4, 4)

    entries = await api.redis.xrange(keys.AUDIT)
    await api.redis.delete(keys.AUDIT)
    for entry_id, fields in entries:  # rewrite the stream with record 2 altered
        record = json.loads(fields[b"r"])
        if record["seq"] == 2:
            record["actor"] = "someone-else"
        await api.redis.xadd(keys.AUDIT, {"r": json.dumps(record)}, id=entry_id)
    status, body = await api.call("GET", "/v1/audit/verify", "security_officer")
    assert (status, body["ok"], body["first_bad_seq"]) == (200, False, 2)


async def test_an_admin_creates_a_token_that_works_once_shown_and_then_revokes_it(api):
    status, created = await api.call("POST", "/v1/tokens", "admin",
                                     body={"name": "night-shift", "role": "oncall",
                                           "ttl_s": 3600})  # fmt: skip
    assert status == 201
    assert (created["name"], created["role"], created["state"]) == ("night-shift", "oncall",
                                                                    "active")  # fmt: skip
    token = created["token"]
    assert (await api.call("GET", "/v1/whoami", None, token=token))[1]["role"] == "oncall"

    listed = (await api.call("GET", "/v1/tokens", "admin"))[1]["tokens"]
    assert "night-shift" in [t["name"] for t in listed]
    assert token not in json.dumps(listed)

    assert (await api.call("DELETE", "/v1/tokens/night-shift", "admin"))[0] == 200
    assert (await api.call("GET", "/v1/whoami", None, token=token))[0] == 401
    assert (await api.call("DELETE", "/v1/tokens/night-shift", "admin"))[0] == 404
    actions = [(r["action"], r["target"]) for r in await api.audit.read()]
    assert actions == [("token.create", "night-shift"), ("token.revoke", "night-shift"),
                       ("auth.failed", "/v1/whoami")]  # fmt: skip
    assert token not in json.dumps(await api.audit.read())


async def test_a_second_live_token_with_the_same_name_is_a_conflict(api):
    body = {"name": "dup", "role": "viewer"}
    assert (await api.call("POST", "/v1/tokens", "admin", body=body))[0] == 201
    status, reply = await api.call("POST", "/v1/tokens", "admin", body=body)
    assert status == 409 and "already exists" in reply["error"]
