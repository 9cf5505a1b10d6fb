"""The API's audit verification: a log trimmed as documented verifies from its trimmed point."""

from __future__ import annotations

from tests.api.test_api_support import ApiStack, api_fixture

api = api_fixture()


async def append(api: ApiStack, count: int) -> None:
    for i in range(count):
        await api.audit.append("alice", "duty_manager", "incident.ack", f"inc-{i}")


async def test_a_log_trimmed_by_audit_redis_keep_verifies_from_the_trimmed_point(api: ApiStack):
    api.audit.redis_keep = 5  # security.audit_redis_keep = 5
    for _ in range(3):
        await append(api, 10)
        await api.audit.checkpoint()
        await api.audit.mirror()
    assert await api.audit.trim() == 21  # Redis now starts at record 21
    await append(api, 2)

    status, body = await api.call("GET", "/v1/audit/verify", "security_officer")
    assert status == 200
    assert (body["ok"], body["from_seq"], body["verified_upto"]) == (True, 21, 32), body
    assert body["last_checkpoint_seq"] == 30
