"""The playbook library through the API: the list the console's picker offers, one playbook."""

from __future__ import annotations

import pytest

from tests.api.test_api_support import api_fixture, start_api

api = api_fixture()

BUILT_IN = {"audit-integrity", "contact-surge", "data-leak", "disaster", "network-outage",
            "public-opinion", "sla-breach", "system-crash"}  # fmt: skip


async def test_every_role_lists_the_library_with_both_titles_of_every_playbook_and_step(api):
    for role in ("viewer", "oncall", "duty_manager", "security_officer", "admin"):
        status, body = await api.call("GET", "/v1/playbooks", role)
        assert status == 200, role
        assert {p["id"] for p in body["playbooks"]} == BUILT_IN
    disaster = next(p for p in body["playbooks"] if p["id"] == "disaster")
    assert disaster["title"] == {"zh": "灾难性事件应对", "en": "Disaster"}
    assert disaster["manual_only"] is True
    assert disaster["steps"][0] == {
        "id": "people-safe",
        "title": {"zh": "确认全体值班人员安全", "en": "Make sure every person on duty is safe"},
        "owner": "duty_manager",
    }
    surge = next(p for p in body["playbooks"] if p["id"] == "contact-surge")
    assert (surge["kinds"], surge["manual_only"]) == (["surge"], False)


async def test_one_playbook_is_given_by_id_and_an_unknown_one_is_404(api):
    status, body = await api.call("GET", "/v1/playbooks/sla-breach", "viewer")
    assert status == 200
    assert body["id"] == "sla-breach"
    assert all(set(s["title"]) == {"zh", "en"} and s["title"]["zh"] for s in body["steps"])
    status, body = await api.call("GET", "/v1/playbooks/no-such-playbook", "viewer")
    assert (status, "no-such-playbook" in body["error"]) == (404, True)


@pytest.mark.parametrize(("path", "token", "status"), [
    ("/v1/playbooks", None, 401),
    ("/v1/playbooks", "not-a-token", 401),
    ("/v1/playbooks/disaster", None, 401),
])  # fmt: skip
async def test_the_library_is_refused_without_a_valid_token(api, path, token, status):
    got, _ = await api.call("GET", path, None, token=token)
    assert got == status


async def test_without_a_runner_the_library_comes_from_the_config(redis_url, serve_app, data_dir):
    stack, redis = await start_api(redis_url, serve_app, data_dir, with_runner=False)
    try:
        status, body = await stack.call("GET", "/v1/playbooks", "viewer")
        assert status == 200
        assert {p["id"] for p in body["playbooks"]} == BUILT_IN
    finally:
        await stack.session.close()
        await redis.aclose()
