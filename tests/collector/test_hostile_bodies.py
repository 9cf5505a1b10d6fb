"""Property tests of the decoding path: any bytes in, never a 500, never a hang.

Each example is a real HTTP request to a real collector app (one per test, so
hypothesis' examples share it); what comes back must be 202 with every
rejection naming an index and a field, or a 4xx with an ``error``. Strings
include lone UTF-16 surrogates (which JSON may escape on their own), and bodies
come with broken or unknown Content-Encoding headers, sent to the collector as
the service runs it (it inflates bodies itself).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from typing import Any

import aiohttp
import msgpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import Running, all_events

CONTENT_TYPES = ["application/json", "application/msgpack", "text/plain", ""]

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
# st.text never yields surrogates, so strings holding them are joined from characters.
texts = st.text(max_size=20) | st.lists(st.characters() | surrogates, min_size=1, max_size=20).map(
    "".join
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=5),
    max_leaves=30,
)  # fmt: skip
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["contact", "queue.stats", "heartbeat", "health", "x", 3])},
    optional={
        "ts": st.one_of(st.floats(), st.integers(), texts, st.just(time.time())),
        "source": st.one_of(st.text(max_size=300), texts, st.integers()),
        "queue": json_values, "channel": st.sampled_from(["chat", "fax", 1]),
        "waiting": st.one_of(st.integers(), st.floats()), "id": json_values,
    },
)  # fmt: skip
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def post(running: Running, body: bytes, content_type: str, gz: bool) -> tuple[int, Any]:
    headers = {**running.headers, "Content-Type": content_type}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    async with aiohttp.ClientSession() as session:
        request = session.post(f"{running.url}/v1/events", data=body, headers=headers)
        async with request as resp:
            return resp.status, await resp.json(content_type=None)


def check_answer(status: int, answer: Any, batch_len: int | None = None) -> None:
    assert status in (202, 400, 413, 415), (status, answer)
    if status != 202:
        assert isinstance(answer["error"], str) and answer["error"]
        return
    for rejection in answer["rejected"]:
        assert isinstance(rejection["index"], int) and isinstance(rejection["field"], str)
        assert rejection["error"]
        if batch_len is not None:
            assert 0 <= rejection["index"] < batch_len
    if batch_len is not None:
        assert answer["accepted"] + len(answer["rejected"]) + answer["duplicates"] == batch_len


@SETTINGS
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(CONTENT_TYPES),
       gz=st.booleans())  # fmt: skip
async def test_any_bytes_get_a_4xx_or_a_202_and_never_hang(
    collector: Running, body: bytes, content_type: str, gz: bool
) -> None:
    status, answer = await asyncio.wait_for(post(collector, body, content_type, gz), 5)
    check_answer(status, answer)


@SETTINGS
@given(batch=st.lists(event_like | json_values, max_size=20), as_msgpack=st.booleans())
async def test_any_list_of_values_names_every_rejection(
    collector: Running, batch: list[Any], as_msgpack: bool
) -> None:
    bad_utf8 = False
    if as_msgpack:
        try:
            body, content_type = msgpack.packb(batch), "application/msgpack"
        except OverflowError:  # msgpack has no integers beyond 64 bits; JSON does
            assume(False)
        except UnicodeEncodeError:  # a surrogate: msgpack carries it as invalid UTF-8
            try:
                body = msgpack.packb(batch, unicode_errors="surrogatepass")
            except OverflowError:
                assume(False)
            content_type, bad_utf8 = "application/msgpack", True
    else:
        body, content_type = json.dumps(batch).encode(), "application/json"
    status, answer = await asyncio.wait_for(post(collector, body, content_type, False), 5)
    if bad_utf8:  # msgpack strings must be UTF-8: the body as a whole is unreadable
        assert status == 400 and "UTF-8" in answer["error"], answer
        return
    assert status == 202, answer
    check_answer(status, answer, len(batch))


def valid_mention(text: str, field: str) -> dict[str, Any]:
    event = {
        "type": "social.mention", "ts": time.time(), "source": "weibo", "platform": "weibo",
        "topic": "云杉优选", "text": "发货太慢了", "author": "小王",
    }  # fmt: skip
    return {**event, field: text}


@SETTINGS
@given(
    texts=st.lists(texts, min_size=1, max_size=8),
    field=st.sampled_from(["text", "topic", "source", "author", "platform"]),
)
async def test_surrogates_in_any_field_reject_only_their_event(
    collector: Running, texts: list[str], field: str
) -> None:
    batch = [valid_mention(t, field) for t in texts]
    status, answer = await post(collector, json.dumps(batch).encode(), "application/json", False)
    check_answer(status, answer, len(batch))
    # A high surrogate followed by a low one is a pair: JSON reads it as one character.
    read = [json.loads(json.dumps(t)) for t in texts]
    bad = {i for i, t in enumerate(read) if any(0xD800 <= ord(c) <= 0xDFFF for c in t)}
    assert {r["index"] for r in answer["rejected"] if "surrogate" in r["error"]} == bad


ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd", "compress", "identity", "gzip, deflate"]


def encoded(body: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(body)
    if how == "deflate":
        return zlib.compress(body)
    if how == "truncated":
        return gzip.compress(body)[:-5]
    return body


@SETTINGS
@given(
    batch=st.lists(event_like, max_size=5),
    encoding=st.sampled_from(ENCODINGS),
    how=st.sampled_from(["gzip", "deflate", "truncated", "plain"]),
    junk=st.binary(max_size=40),
)
async def test_any_content_encoding_gets_a_4xx_or_a_202_from_the_service(
    service: Running, batch: list[Any], encoding: str, how: str, junk: bytes
) -> None:
    body = encoded(json.dumps(batch).encode(), how) + junk
    headers = {**service.headers, "Content-Type": "application/json", "Content-Encoding": encoding}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{service.url}/v1/events", data=body, headers=headers) as resp,
    ):
        status, answer = resp.status, await resp.json(content_type=None)
    check_answer(status, answer)


# --- every route of the collector, enumerated from its router: never a 5xx ----------------

BAD_UTF8 = "%ED%A0%80"  # a lone surrogate as UTF-8 bytes: not valid UTF-8
HOSTILE_QUERY = [BAD_UTF8, "%FF", "-1", "1e309", str(2**64), "NaN", "x" * 2000, "%00"]
HOSTILE_BODIES: list[tuple[bytes, dict[str, str]]] = [
    (b"", {}),
    (b"{nope", {}),
    (b'[{"type": "heartbeat", "ts": NaN, "source": "s"}]', {}),
    (b'[{"type": "heartbeat", "ts": 1e309, "source": "\\ud800"}]', {}),
    (b'[{"type": "heartbeat", "ts": 18446744073709551616, "source": "s"}]', {}),
    (b"[" * 50_000 + b"]" * 50_000, {}),
    (b"\x1f\x8b\x08\x00junk", {"Content-Encoding": "gzip"}),
    (b"\x78\x9cjunk", {"Content-Encoding": "deflate"}),
    (b"\xff\xff\xff", {"Content-Encoding": "br"}),
    (b"\xc1", {"Content-Type": "application/msgpack"}),
]


def collector_routes(data_dir: Any) -> list[tuple[str, str]]:
    """``(method, path)`` of every route the real collector app serves (HEAD is GET's twin)."""
    from tests.collector.conftest import make_config
    from watchfloor.collector.app import create_app
    from watchfloor.collector.service import connect_redis

    app = create_app(make_config(data_dir), connect_redis("redis://127.0.0.1:1"),
                     encrypt=None, signatures=None, background=False)  # fmt: skip
    found = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    return sorted((m, p) for m, p in found if m != "HEAD")


async def hostile_call(
    url: str, method: str, path: str, headers: dict[str, str], data: bytes | None = None
) -> tuple[int, Any]:
    from yarl import URL

    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, URL(url + path, encoded=True), data=data, headers=headers
        ) as resp,  # fmt: skip
    ):
        text = await resp.text(errors="replace")
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


async def test_every_collector_route_refuses_hostile_input_with_a_json_4xx(
    service: Running, tmp_path: Any
) -> None:
    routes = collector_routes(tmp_path)
    assert ("POST", "/v1/events") in routes
    events_before = len(await all_events(service.redis))
    for method, path in routes:
        for auth in (service.headers, {}, {"Authorization": "Bearer wf_forged"}):
            for value in HOSTILE_QUERY:
                query = f"?after={value}&limit={value}&zz_unknown={value}"
                status, reply = await hostile_call(service.url, method, path + query, auth)
                assert status < 500, (method, path, value, status, reply)
                if status >= 400:
                    assert isinstance(reply, dict) and reply["error"], (path, value, reply)
            if method == "GET":
                continue
            for data, extra in HOSTILE_BODIES:
                headers = {**auth, "Content-Type": "application/json", **extra}
                status, reply = await hostile_call(service.url, method, path, headers, data)
                assert status < 500, (path, data[:40], extra, status, reply)
                if status == 202:  # read, but each event refused by index and field
                    assert reply["accepted"] == 0 and reply["rejected"], reply
                    check_answer(status, reply)
                else:
                    assert isinstance(reply, dict) and reply["error"], (path, data[:40], reply)
    for method, path in [("DELETE", "/v1/events"), ("GET", "/v1/nope"), ("GET", "/" + BAD_UTF8)]:
        status, reply = await hostile_call(service.url, method, path, service.headers)
        assert status in (404, 405) and reply["error"], (method, path, status, reply)
    assert len(await all_events(service.redis)) == events_before  # nothing refused was stored
