"""Hostile input at EVERY route of the real monitor API: never a 5xx, never a side effect.

The routes are read from ``create_app(...).router.routes()``, so an endpoint
added later is covered without touching this file. Each route gets, through a
real HTTP server on a real Redis: lone surrogates and bad UTF-8 in its path and
query parameters, absurd numbers (1e309, -1, 2**64, NaN), huge strings, ids
that do not exist, unknown query parameters, a token of every role (and none,
and a forged one), and, on writes, bodies that are empty, not JSON, not an
object, too deep, NaN/Infinity literals, broken gzip/deflate/br, and every
field the handlers declare filled with hostile values (hypothesis, bounded).
Every answer is below 500; every 4xx is ``{"error": ...}`` JSON; a refused
write leaves Redis exactly as it was (no id burnt, nothing audited).
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.api.test_api_hostile import redis_contents
from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.api.app import create_app
from watchfloor.core.config import Config
from watchfloor.security.roles import ROLES


def every_route() -> list[tuple[str, str]]:
    """``(method, path template)`` of every route the real app serves (HEAD is GET's twin)."""
    app = create_app(Config(), aioredis.Redis.from_url("redis://127.0.0.1:1"))
    found = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    return sorted((m, p) for m, p in found if m != "HEAD")


ROUTES = every_route()
API_DIR = Path(__file__).resolve().parents[2] / "api"
FIELDS = sorted(
    {m for f in API_DIR.glob("*.py") for m in re.findall(r'Field\(\s*"(\w+)"', f.read_text())}
)
"""Every body field any handler declares (read from the sources: new fields are covered)."""

BAD_UTF8 = "%ED%A0%80"  # a lone surrogate as UTF-8 bytes: not valid UTF-8
HOSTILE_TEXT = [BAD_UTF8, "%FF%FE", "-1", "1e309", str(2**64), "NaN", "Infinity",
                "x" * 3000, "%00", "..%2F..%2Fetc", "NOPE-404"]  # fmt: skip
QUERY_NAMES = ["limit", "after", "before", "since", "until", "at", "q", "kind", "state",
               "severity", "subject", "status", "actor", "id", "zz_unknown"]  # fmt: skip
BAD_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty", b"", {}),
    ("not json", b"{nope", {}),
    ("array", b"[1]", {}),
    ("NaN literal", b'{"value": NaN, "note": NaN}', {}),
    ("Infinity literal", b'{"duration_s": Infinity, "ttl_s": -Infinity}', {}),
    ("1e309", b'{"duration_s": 1e309, "ttl_s": 1e309, "starts_at": 1e309}', {}),
    ("2**64", b'{"duration_s": 18446744073709551616, "starts_at": -1}', {}),
    ("deep", b'{"note": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", {}),
    ("surrogate key", b'{"\\ud800": 1}', {}),
    ("surrogate values", json.dumps({f: "a\ud800" for f in FIELDS}).encode(), {}),
    ("bad utf-8", b'{"note": "\xff\xfe"}', {}),
    ("broken gzip", b"\x1f\x8b\x08\x00junk", {"Content-Encoding": "gzip"}),
    ("broken deflate", b"\x78\x9cjunk", {"Content-Encoding": "deflate"}),
    ("broken br", b"\xff\xff\xff", {"Content-Encoding": "br"}),
    ("deflate of non-json", zlib.compress(b"nope"), {"Content-Encoding": "deflate"}),
    ("text/plain", b"note=x", {"Content-Type": "text/plain"}),
]

api = api_fixture()


class Ids:
    """Real ids for the path parameters, so hostile bodies reach the handlers' checks."""

    def __init__(self, incident: str, run: dict[str, Any]) -> None:
        self.incident, self.run, self.step = incident, run["id"], run["steps"][0]["id"]

    def real(self, template: str) -> str:
        """``template`` with every parameter a plausible, existing value."""
        first = {"incidents": self.incident, "runs": self.run, "flags": "auto_reply",
                 "playbooks": "sla-breach", "tokens": "t-viewer"}  # fmt: skip
        section = template.split("/")[2] if template.count("/") > 1 else ""
        path = re.sub(r"\{step\}", self.step, template)
        return re.sub(r"\{\w+\}", first.get(section, "NOPE-404"), path, count=1)


def fill(template: str, value: str) -> str:
    """``template`` with every parameter ``value`` (already percent-encoded)."""
    return re.sub(r"\{\w+\}", lambda _: value, template)


async def send(
    api: ApiStack, method: str, path: str, *, role: str | None = "admin",
    token: str | None = None, data: bytes | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    """``(status, JSON or text)``; ``path`` is sent as is (it is already encoded)."""
    sent = {**api.headers(role, token), **({"Content-Type": "application/json"} if data else {})}
    sent.update(headers or {})
    url = URL(api.url + path, encoded=True)
    async with api.session.request(method, url, data=data, headers=sent) as response:
        text = await response.text(errors="replace")
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


PAGES = ("/v1/ack/",)
"""Routes a person opens in a browser (the paging link): their refusals are HTML pages."""


def check(status: int, reply: Any, what: object, template: str = "") -> None:
    assert status < 500, (what, status, reply)
    if status >= 400 and template.startswith(PAGES) and isinstance(reply, str):
        assert isinstance(reply, str) and "<html>" in reply, (what, reply)
    elif status >= 400:
        assert isinstance(reply, dict) and isinstance(reply.get("error"), str), (what, reply)
        assert reply["error"], what


async def setup(api: ApiStack) -> Ids:
    inc = (await api.fire()).id
    return Ids(inc, await api.start_run(inc))


@pytest.mark.parametrize(("method", "template"), ROUTES)
async def test_hostile_path_and_query_values_never_get_a_5xx(api, method, template):
    ids = await setup(api)
    before = await redis_contents(api)
    for value in HOSTILE_TEXT:
        if "{" in template:
            status, reply = await send(api, method, fill(template, value))
            check(status, reply, ("path", value), template)
        names = QUERY_NAMES if len(value) < 100 else ["q"]  # under aiohttp's 8 KiB line limit
        query = "&".join(f"{name}={value}" for name in names)
        status, reply = await send(api, method, f"{ids.real(template)}?{query}")
        check(status, reply, ("query", value), template)
        if status == 400 and method == "GET":
            named = [n for n in QUERY_NAMES if f"'{n}'" in reply["error"] or
                     reply["error"].startswith(f"{n}: ")]  # fmt: skip
            assert named or "WebSocket" in reply["error"], reply
    very_long = "/" + "a" * 7_000
    check(*(await send(api, method, fill(template, "x") + very_long)), "long path", template)
    status, _ = await send(api, method, fill(template, "x") + very_long * 5)
    assert status in (400, 414), status  # aiohttp's parser: past its line limit, no handler runs
    if method == "GET":
        assert await redis_contents(api) == before  # reads change nothing, even refused ones


@pytest.mark.parametrize(("method", "template"), ROUTES)
async def test_every_role_and_no_token_get_an_answer_not_a_5xx(api, method, template):
    ids = await setup(api)
    path = f"{ids.real(template)}?q={BAD_UTF8}&zz_unknown=1"
    data = None if method == "GET" else b'{"note": "\\ud800"}'
    for role in [*sorted(ROLES), None]:
        check(*(await send(api, method, path, role=role, data=data)), role, template)
    check(*(await send(api, method, path, role=None, token="wf_forged\u00e9")), "forged", template)


WRITES = [(m, p) for m, p in ROUTES if m != "GET"]


@pytest.mark.parametrize(("method", "template"), WRITES)
async def test_hostile_bodies_are_refused_and_change_nothing(api, method, template):
    ids = await setup(api)
    path = ids.real(template)
    for label, data, headers in BAD_BODIES:
        before = await redis_contents(api)
        status, reply = await send(api, method, path, data=data, headers=headers)
        check(status, reply, label, template)
        if status >= 400:
            assert await redis_contents(api) == before, (label, status, reply)


hostile_value = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(max_size=8) | st.sampled_from(["\ud800", "x" * 5000, "", " "]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=6,
)  # fmt: skip
hostile_body = st.dictionaries(st.sampled_from(FIELDS), hostile_value, max_size=4)


@pytest.mark.parametrize(("method", "template"), WRITES)
async def test_every_declared_field_with_hostile_values_never_gets_a_5xx(api, method, template):
    ids = await setup(api)
    path = quote(ids.real(template))
    loop = asyncio.get_running_loop()

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(body=hostile_body)
    def probe(body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()  # ensure_ascii: surrogates travel as \\udXXX escapes
        status, reply = asyncio.run_coroutine_threadsafe(
            send(api, method, path, data=raw), loop
        ).result(30)
        check(status, reply, body, template)

    await asyncio.to_thread(probe)
