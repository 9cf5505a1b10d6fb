"""Hostile input at every monitor API endpoint: always a clear 4xx JSON error, never a 500."""

from __future__ import annotations

import pytest

from core import keys
from tests.monitor.test_api_support import ApiStack, api_fixture

WRITES = [
    "/v1/incidents/{inc}/ack",
    "/v1/incidents/{inc}/resolve",
    "/v1/incidents/{inc}/note",
    "/v1/incidents",
    "/v1/runs",
    "/v1/runs/RUN-1/steps/s1/done",
    "/v1/runs/RUN-1/steps/s1/escalate",
    "/v1/runs/RUN-1/steps/s1/approve",
    "/v1/tokens",
    "/v1/silences",
    "PUT /v1/flags/auto_reply",
]

BAD_BODIES = [
    ("not json", b"{not json"),
    ("an array", b"[1, 2, 3]"),
    ("a string", b'"ack"'),
    ("a number", b"42"),
    ("null bytes", b"\x00\xff\xfe"),
    ("bad utf-8", b'{"note": "\xff"}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("unknown field", b'{"note": "x", "evil": true}'),
    ("note as number", b'{"note": 5}'),
    ("note as object", b'{"note": {"$gt": ""}}'),
    ("huge note", b'{"note": "' + b"x" * 500_000 + b'"}'),
    ("title as list", b'{"title": ["a"], "severity": "minor", "subject": "s"}'),
    ("bad severity", b'{"title": "t", "severity": "apocalyptic", "subject": "s"}'),
    ("empty title", b'{"title": "   ", "severity": "minor", "subject": "s"}'),
    ("drill as string", b'{"playbook": "p", "incident": "i", "drill": "yes"}'),
    ("ttl as bool", b'{"name": "n", "role": "viewer", "ttl_s": true}'),
    ("ttl infinite", b'{"name": "n", "role": "viewer", "ttl_s": 1e999}'),
    ("role unknown", b'{"name": "n", "role": "god"}'),
    ("name with spaces", b'{"name": "a b", "role": "viewer"}'),
    ("matchers as list", b'{"matchers": ["x"], "duration_s": 5, "reason": "r"}'),
    ("matcher unknown", b'{"matchers": {"tenant": "x"}, "duration_s": 5, "reason": "r"}'),
    ("matcher empty", b'{"matchers": {"rule": ""}, "duration_s": 5, "reason": "r"}'),
    ("silence forever", b'{"matchers": {"rule": "x"}, "duration_s": 1e12, "reason": "r"}'),
    ("flag value number", b'{"value": 1}'),
]


def verb(path: str) -> tuple[str, str]:
    method, _, rest = path.rpartition(" ")
    return method or "POST", rest


def refusal(path: str, api: ApiStack) -> int:
    """400, except run endpoints without a runner: 503 before the body is read."""
    return 503 if path.startswith("/v1/runs") and api.runner is None else 400


api = api_fixture()


@pytest.mark.parametrize("path", WRITES)
async def test_bad_bodies_are_refused_with_a_json_error_and_change_nothing(api, path):
    inc = (await api.fire()).id
    method, target = verb(path.replace("{inc}", inc))
    for label, data in BAD_BODIES:
        status, body = await api.call(method, target, "admin", data=data)
        assert status == refusal(path, api), (label, status, body)
        assert isinstance(body, dict) and body["error"], label
    assert (await api.incidents.get(inc)).state == "open"
    assert await api.incidents.list("all") == [await api.incidents.get(inc)]
    assert await api.redis.hlen(keys.SILENCES) == await api.redis.hlen(keys.FLAGS) == 0


@pytest.mark.parametrize("path", WRITES)
async def test_a_two_mebibyte_body_is_413(api, path):
    inc = (await api.fire()).id
    data = b'{"note": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, body = await api.call(*verb(path.replace("{inc}", inc)), "admin", data=data)
    assert status == (413 if refusal(path, api) == 400 else 503), body
    assert body["error"]


BAD_QUERIES = [
    "/v1/incidents?limit=abc",
    "/v1/incidents?limit=-1",
    "/v1/incidents?limit=99999999999999999999999",
    "/v1/incidents?state=deleted",
    "/v1/incidents?kind=%00",
    "/v1/incidents?severity=apocalyptic",
    "/v1/incidents?subject=" + "s" * 5000,
    "/v1/health?status=sideways",
    "/v1/runs?limit=0",
    "/v1/audit?after=-5",
    "/v1/audit?after=1e9",
    "/v1/audit?limit=many",
    "/v1/audit?actor=" + "a" * 1000,
    "/v1/live?after=yesterday",
    "/v1/live?after=" + "9" * 80,
]


@pytest.mark.parametrize("path", BAD_QUERIES)
async def test_bad_query_parameters_are_400_naming_the_parameter(api, path):
    status, body = await api.call("GET", path, "admin")
    assert status in {400, 503}, body
    assert "query parameter" in body["error"] or body["error"] == "playbook runner not available"


async def test_a_manual_incident_with_an_oversized_title_is_refused(api):
    body = {"title": "标题" * 200, "severity": "minor", "subject": "s"}
    status, reply = await api.call("POST", "/v1/incidents", "admin", body=body)
    assert status == 400 and "title" in reply["error"]
    assert await api.incidents.list("all") == []


async def test_wrong_methods_are_405_json(api):
    status, body = await api.call("DELETE", "/v1/incidents", "admin")
    assert status == 405 and body["error"]


async def test_an_oversized_request_line_or_header_is_refused_not_crashed(api):
    status, _ = await api.call("GET", "/v1/incidents?subject=" + "s" * 20_000, "admin")
    assert status in (400, 414)
    async with api.session.get(
        api.url + "/v1/incidents", headers={**api.headers("admin"), "X-Big": "b" * 20_000}
    ) as response:
        assert response.status in (400, 431)  # fmt: skip
    assert (await api.call("GET", "/v1/incidents", "admin"))[0] == 200


async def test_engine_status_numbers_that_are_not_finite_become_null(api):
    await api.redis.hset(keys.ENGINE_STATUS, mapping={"lag_s": "nan", "watermark": "inf"})
    async with api.session.get(api.url + "/healthz") as response:
        text = await response.text()
    assert "NaN" not in text and "Infinity" not in text
