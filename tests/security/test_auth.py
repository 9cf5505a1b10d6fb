"""The auth gate on real aiohttp servers and a real Redis: deny by default."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from watchfloor.security.auth import (
    Forbidden,
    auth_headers,
    ensure_permission,
    get_principal,
    public,
    requires,
    setup_auth,
)
from watchfloor.security.roles import Permission, Role, allows
from watchfloor.security.tokens import TokenStore

ADMIN = "bootstrap-admin-secret"


class RecordingAudit:
    """Stands in for security.audit.AuditLog: keeps what was appended."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def append(self, actor, role, action, target, outcome="ok", details=None):
        record = {"actor": actor, "role": role, "action": action, "target": target,
                  "outcome": outcome, "details": details}  # fmt: skip
        self.records.append(record)
        return record


def permission_handler(permission: Permission):
    @requires(permission)
    async def handler(request: web.Request) -> web.Response:
        principal = get_principal(request)
        return web.json_response({"name": principal.name, "permission": permission.value})

    return handler


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def undeclared(request: web.Request) -> web.Response:
    return web.json_response({"leaked": True})


class BoardView(web.View):
    @requires(Permission.READ_BOARD)
    async def get(self) -> web.Response:
        return web.json_response({"view": True})

    async def post(self) -> web.Response:
        return web.json_response({"leaked": True})


def build_app(store: TokenStore, audit=None, **options) -> tuple[web.Application, dict]:
    app = web.Application()
    seen: dict[str, Any] = {"ws_handler_ran": False}

    @requires(Permission.READ_BOARD)
    async def live(request: web.Request) -> web.WebSocketResponse:
        seen["ws_handler_ran"] = True
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        principal = get_principal(request)
        async for msg in ws:
            try:
                ensure_permission(principal, Permission(msg.data))
                await ws.send_json({"ok": msg.data})
            except Forbidden as exc:
                await ws.send_json({"error": str(exc)})
        return ws

    for permission in Permission:
        app.router.add_post(f"/p/{permission.value}", permission_handler(permission))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/undeclared", undeclared)
    app.router.add_get("/live", live)
    app.router.add_view("/view", BoardView)
    setup_auth(app, store, ADMIN, audit, **options)
    return app, seen


@pytest.fixture
async def server(redis_client, serve_app):
    store = TokenStore(redis_client)
    audit = RecordingAudit()
    app, seen = build_app(store, audit, fail_limit=3, fail_delay_s=0.05)
    base = await serve_app(app)
    async with aiohttp.ClientSession() as session:
        yield {"base": base, "store": store, "audit": audit, "seen": seen, "http": session}


async def call(server, method: str, path: str, token: str | None = None):
    headers = auth_headers(token) if token else {}
    async with server["http"].request(method, server["base"] + path, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_every_role_gets_exactly_the_permissions_of_the_matrix(server):
    tokens = {role: (await server["store"].create(f"t-{role.value}", role.value))[0]
              for role in Role}  # fmt: skip
    outcomes = {}
    for role, token in tokens.items():
        for permission in Permission:
            status, body, _ = await call(server, "POST", f"/p/{permission.value}", token)
            outcomes[(role, permission)] = status
            if status == 200:
                assert body == {"name": f"t-{role.value}", "permission": permission.value}
            else:
                assert body["error"] == f"role {role.value!r} may not {permission.value}"
    expected = {(r, p): 200 if allows(r, p) else 403 for r in Role for p in Permission}
    assert outcomes == expected
    assert sum(s == 200 for s in outcomes.values()) == 7 + 1 + 2 + 4 + 2 + 1


async def test_the_bootstrap_admin_token_holds_every_permission(server):
    for permission in Permission:
        status, body, _ = await call(server, "POST", f"/p/{permission.value}", ADMIN)
        assert (status, body["name"]) == (200, "admin-token")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "missing bearer token"),
        ({"Authorization": "Bearer wf_not-a-real-token"}, "invalid or expired token"),
        ({"Authorization": "Bearer " + ADMIN + "x"}, "invalid or expired token"),
        ({"Authorization": "Bearer " + ADMIN[:-1]}, "invalid or expired token"),
    ],
)
async def test_requests_without_a_valid_token_get_401(server, headers, reason):
    async with server["http"].post(server["base"] + "/p/read_board", headers=headers) as resp:
        assert resp.status == 401
        assert await resp.json() == {"error": reason}
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_public_handlers_need_no_token(server):
    assert (await call(server, "GET", "/healthz"))[:2] == (200, {"ok": True})


async def test_a_handler_without_a_declared_permission_is_refused_even_to_admin(server):
    status, body, _ = await call(server, "GET", "/undeclared", ADMIN)
    assert (status, body) == (403, {"error": "endpoint declares no permission"})
    status, body, _ = await call(server, "POST", "/view", ADMIN)
    assert (status, body) == (403, {"error": "endpoint declares no permission"})


async def test_class_based_views_use_the_permission_of_their_method(server):
    token, _ = await server["store"].create("viewer", "viewer")
    assert (await call(server, "GET", "/view", token))[:2] == (200, {"view": True})
    producer, _ = await server["store"].create("producer", "producer")
    assert (await call(server, "GET", "/view", producer))[0] == 403


@pytest.mark.parametrize(
    ("method", "path", "authenticated", "error"),
    [
        ("GET", "/no/such/route", 404, "not found"),
        ("GET", "/p/read_board", 405, "method not allowed"),
        ("DELETE", "/healthz", 405, "method not allowed"),
    ],
)
async def test_unknown_routes_answer_404_or_405_only_after_authentication(
    server, method, path, authenticated, error
):
    assert (await call(server, method, path))[:2] == (401, {"error": "missing bearer token"})
    token, _ = await server["store"].create("viewer", "viewer")
    status, body, headers = await call(server, method, path, token)
    assert (status, body) == (authenticated, {"error": error})
    assert ("Allow" in headers) == (status == 405)


async def test_revoked_and_expired_tokens_are_refused(server):
    store = server["store"]
    token, _ = await store.create("leaver", "admin")
    assert (await call(server, "POST", "/p/read_board", token))[0] == 200
    await store.revoke("leaver")
    assert (await call(server, "POST", "/p/read_board", token))[0] == 401


async def test_a_websocket_without_a_token_is_refused_before_the_upgrade(server):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await server["http"].ws_connect(server["base"] + "/live")
    assert caught.value.status == 401
    producer, _ = await server["store"].create("producer", "producer")
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await server["http"].ws_connect(server["base"] + "/live", headers=auth_headers(producer))
    assert caught.value.status == 403
    assert server["seen"]["ws_handler_ran"] is False


async def test_privileged_websocket_messages_are_rechecked_against_the_role(server):
    token, _ = await server["store"].create("watcher", "oncall")
    url = server["base"] + "/live"
    async with server["http"].ws_connect(url, headers=auth_headers(token)) as ws:
        await ws.send_str("run_steps")
        assert await ws.receive_json() == {"ok": "run_steps"}
        await ws.send_str("ack")
        assert await ws.receive_json() == {"error": "role 'oncall' may not ack"}


async def test_failures_past_the_limit_are_throttled_cheaply_and_audited_once_per_window(
    redis_client, serve_app
):
    audit = RecordingAudit()
    app, _ = build_app(TokenStore(redis_client), audit, fail_limit=3, fail_delay_s=0.01,
                       fail_window_s=1.0)  # fmt: skip
    server = {"base": await serve_app(app), "http": aiohttp.ClientSession()}
    async with server["http"]:
        statuses = [(await call(server, "POST", "/p/read_board", "wf_guess"))[0] for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        status, body, headers = await call(server, "POST", "/p/read_board", "wf_guess")
    assert (status, body) == (429, {"error": "too many failed authentications"})
    assert 1 <= int(headers["Retry-After"]) <= 1
    assert await redis_client.dbsize() == 0  # counted in the process, not in Redis
    assert [r["outcome"] for r in audit.records] == ["denied"] * 3  # none for each 429
    assert audit.records[0]["actor"] == "remote:127.0.0.1"
    assert audit.records[0]["target"] == "/p/read_board"
    for _ in range(40):  # the window ends after 1 s: one summary of it
        if len(audit.records) > 3:
            break
        await asyncio.sleep(0.1)
    summary = audit.records[3]
    assert (summary["action"], summary["outcome"]) == ("auth.throttled", "throttled")
    assert summary["details"]["failures"] == 6 and summary["details"]["throttled"] == 3
    assert summary["details"]["paths"] == {"/p/read_board": 3}
    assert "wf_guess" not in repr(audit.records)


async def test_a_repeated_bad_token_is_looked_up_in_redis_once(server, redis_client):
    async def lookups() -> int:
        stats = await redis_client.info("commandstats")
        return int(stats.get("cmdstat_hget", {}).get("calls", 0))

    before = await lookups()
    for _ in range(30):
        assert (await call(server, "POST", "/p/read_board", "wf_same_guess"))[0] in (401, 429)
    assert await lookups() - before == 1


async def test_an_audited_path_is_cut_and_its_control_characters_escaped(server):
    path = "/p/%1b%5b2K%1b%5b1A" + "a" * 5000
    async with server["http"].post(URL(server["base"] + path, encoded=True)) as resp:
        assert resp.status == 401
    target = server["audit"].records[-1]["target"]
    assert len(target) <= 200 and r"\x1b[2K" in target
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)


async def test_a_valid_token_still_works_from_a_throttled_address(server):
    for _ in range(5):
        await call(server, "POST", "/p/read_board")
    token, _ = await server["store"].create("console", "viewer")
    assert (await call(server, "POST", "/p/read_board", token))[0] == 200


async def test_a_failing_audit_does_not_turn_a_401_into_a_500(redis_client, serve_app):
    class BrokenAudit:
        async def append(self, *args, **kwargs):
            raise RuntimeError("audit down")

    app, _ = build_app(TokenStore(redis_client), BrokenAudit())
    base = await serve_app(app)
    async with aiohttp.ClientSession() as http, http.post(base + "/p/ack") as resp:
        assert resp.status == 401


async def test_without_redis_tokens_get_503_but_the_admin_token_still_works(
    private_redis, serve_app
):
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(private_redis.url, socket_connect_timeout=1)
    store = TokenStore(client)
    token, _ = await store.create("viewer", "viewer")
    app, _ = build_app(store)
    base = await serve_app(app)
    private_redis.kill()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/p/read_board", headers=auth_headers(token)) as resp:
                assert resp.status == 503
                assert "error" in await resp.json()
            async with http.post(base + "/p/read_board", headers=auth_headers(ADMIN)) as resp:
                assert resp.status == 200
    finally:
        await client.aclose()


def test_requires_refuses_something_that_is_not_a_permission():
    with pytest.raises(TypeError):
        requires("read_board")  # type: ignore[arg-type]


def service_apps(data_dir, redis_url):
    import redis.asyncio as aioredis

    from watchfloor.api.app import create_app as monitor_app
    from watchfloor.collector.app import create_app as collector_app
    from watchfloor.core.config import load_config

    config = load_config(None, {"WATCHFLOOR_DATA_DIR": str(data_dir)})
    client = aioredis.Redis.from_url(redis_url)
    return client, {
        "monitor": monitor_app(config, client),
        "collector": collector_app(config, client, background=False),
    }


async def test_every_route_of_every_service_declares_a_permission_or_is_public(data_dir, redis_url):
    from watchfloor.security.auth import PERMISSION_ATTR, PUBLIC_ATTR

    client, apps = service_apps(data_dir, redis_url)
    undeclared, public_routes = [], []
    for service, app in apps.items():
        for route in app.router.routes():
            handler = route.handler
            path = route.resource.canonical if route.resource else "?"
            if getattr(handler, PUBLIC_ATTR, False):
                public_routes.append((service, route.method, path))
            elif not isinstance(getattr(handler, PERMISSION_ATTR, None), Permission):
                undeclared.append((service, route.method, path))
    await client.aclose()
    assert undeclared == []
    # Besides health and metrics, only the paging acknowledge link is public: its signed,
    # single-use, expiring token in the path is the credential (GET shows, POST acknowledges).
    assert sorted(p for _, m, p in public_routes if m == "GET") == sorted(
        ["/healthz", "/metrics"] * 2 + ["/v1/ack/{token}"]
    )
    assert sorted((s, p) for s, m, p in public_routes if m == "POST") == [
        ("monitor", "/v1/ack/{token}")
    ]
