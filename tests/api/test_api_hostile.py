"""Hostile input at every monitor API endpoint: always a clear 4xx JSON error, never a 500."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.core import keys

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
    await api.redis.set(keys.SHARDS, 1)
    await api.redis.hset(keys.engine_status(0), mapping={"lag_s": "nan", "watermark": "inf"})
    async with api.session.get(api.url + "/healthz") as response:
        text = await response.text()
    assert "NaN" not in text and "Infinity" not in text


# --- lone surrogates and broken encodings: a 400 naming the field, nothing changed ----------

SURROGATE = "\\ud800"
"""A JSON-escaped lone surrogate: valid JSON, not encodable as UTF-8."""

GOOD_BODIES = {
    "/v1/incidents/{inc}/ack": {"note": "n"},
    "/v1/incidents/{inc}/resolve": {"note": "n"},
    "/v1/incidents/{inc}/note": {"note": "n"},
    "/v1/incidents": {"title": "t", "severity": "minor", "subject": "s"},
    "/v1/runs": {"playbook": "sla-breach", "incident": "{inc}"},
    "/v1/runs/RUN-1/steps/s1/done": {"note": "n"},
    "/v1/runs/RUN-1/steps/s1/escalate": {"note": "n"},
    "/v1/runs/RUN-1/steps/s1/approve": {"note": "n"},
    "/v1/runs/RUN-1/steps/s1/skip": {"note": "n"},
    "/v1/runs/RUN-1/abort": {"note": "n"},
    "/v1/tokens": {"name": "n", "role": "viewer"},
    "/v1/silences": {"matchers": {"rule": "x"}, "duration_s": 60, "reason": "r"},
    "PUT /v1/flags/auto_reply": {"value": "on"},
}


def surrogate_bodies(body: dict) -> list[tuple[str, bytes]]:
    """``(field, raw JSON)``: the body with one string (value, map key or value) a surrogate."""
    mark = "SURROGATE-HERE"
    out = []
    for name, value in body.items():
        if isinstance(value, str):
            bad: object = f"a{mark}b"
        elif isinstance(value, dict):
            bad = {"rule": mark}
        else:
            continue
        out.append((name, json.dumps({**body, name: bad}).replace(mark, SURROGATE).encode()))
    raw = json.dumps({**body, mark: "v"}).replace(mark, SURROGATE)
    out.append((SURROGATE, raw.encode()))
    return out


def concrete(path: str, inc: str, run: dict) -> str:
    """``path`` naming a real incident, run and first step."""
    step = run["steps"][0]["id"]
    return path.replace("{inc}", inc).replace("RUN-1", run["id"]).replace("s1", step)


async def redis_contents(api: ApiStack) -> dict[bytes, object]:
    """Every key's value, read by type (DUMP bytes differ for equal hashes)."""
    r, out = api.redis, {}
    async for key in r.scan_iter():
        kind = (await r.type(key)).decode()
        read = {"string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
                "set": r.smembers, "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
                "stream": r.xrange}[kind]  # fmt: skip
        out[key] = await read(key)
    return out


@pytest.mark.parametrize("path", sorted(GOOD_BODIES))
async def test_a_lone_surrogate_in_any_field_is_a_400_naming_it_and_changes_nothing(api, path):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    target = concrete(path, inc, run)
    body = {k: v.replace("{inc}", inc) if isinstance(v, str) else v
            for k, v in GOOD_BODIES[path].items()}  # fmt: skip
    before = await redis_contents(api)
    for name, raw in surrogate_bodies(body):
        status, reply = await api.call(*verb(target), "admin", data=raw)
        assert status == 400, (name, status, reply)
        shown = "\\ud800" if name == SURROGATE else name
        assert shown in reply["error"] and "character" in reply["error"], reply
    assert await redis_contents(api) == before  # no id burnt, nothing audited, nothing written


BROKEN_ENCODINGS = [
    ("gzip", b"\x1f\x8b\x08\x00garbage"),
    ("gzip", b"not gzip at all"),
    ("deflate", b"\x78\x9cbroken"),
    ("deflate", b"plain"),
    ("br", b"\xff\xff\xff"),
    ("zstd", b"nope"),
    ("x-unknown", b'{"note": "n"}'),
]


@pytest.mark.parametrize("path", sorted(GOOD_BODIES))
async def test_an_undecodable_content_encoding_is_a_400_and_changes_nothing(api, path):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    method, target = verb(concrete(path, inc, run))
    before = await redis_contents(api)
    for encoding, data in BROKEN_ENCODINGS:
        headers = {**api.headers("admin"), "Content-Type": "application/json",
                   "Content-Encoding": encoding}  # fmt: skip
        async with api.session.request(method, api.url + target, data=data,
                                       headers=headers) as response:  # fmt: skip
            text = await response.text()
        assert response.status == 415, (encoding, response.status, text)
        assert "Content-Encoding" in json.loads(text)["error"], text
    assert await redis_contents(api) == before


hostile_text = st.text(st.characters(codec=None, categories=None), max_size=12) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "\u202e", "\U0010ffff", "x" * 300]
)
hostile_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


def hostile_body(path: str) -> st.SearchStrategy[dict]:
    """The endpoint's good body with any of its fields replaced by hostile values."""
    good = GOOD_BODIES[path]
    return st.fixed_dictionaries(
        {}, optional={name: hostile_json | st.just(value) for name, value in good.items()}
    ) | st.dictionaries(hostile_text, hostile_json, max_size=3)


@pytest.mark.parametrize("path", sorted(GOOD_BODIES))
async def test_hostile_json_and_encodings_never_get_a_500(api, path):
    inc = (await api.fire()).id
    run = await api.start_run(inc)
    method, target = verb(concrete(path, inc, run))

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(body=hostile_body(path), encoding=st.sampled_from(["", "gzip", "deflate", "broken"]))
    def check(body: dict, encoding: str) -> None:
        raw = json.dumps(body).encode()  # ensure_ascii: surrogates travel as \\udXXX escapes
        status, reply = asyncio.run_coroutine_threadsafe(
            send(api, method, target, raw, encoding), loop
        ).result(30)
        assert status < 500, (body, encoding, status, reply)
        assert isinstance(reply, dict) and reply, reply

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(check)


async def send(api: ApiStack, method: str, target: str, raw: bytes, encoding: str) -> tuple:
    headers = {**api.headers("admin"), "Content-Type": "application/json"}
    if encoding == "gzip":
        raw = gzip.compress(raw)
    elif encoding == "deflate":
        raw = zlib.compress(raw)
    elif encoding == "broken":
        raw, encoding = raw[: len(raw) // 2], "gzip"
    if encoding:
        headers["Content-Encoding"] = encoding
    async with api.session.request(method, api.url + target, data=raw,
                                   headers=headers) as response:  # fmt: skip
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text
