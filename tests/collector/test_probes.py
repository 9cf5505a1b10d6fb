"""Health probes against a real local aiohttp server and a closed TCP port; the heartbeat."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.collector.conftest import StartCollector, all_events
from watchfloor.collector.probes import check_http, check_tcp
from watchfloor.core.config import CollectorConfig, Config, ProbeConfig


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def target(serve_app: Any) -> str:
    """A small service with a healthy, a failing, a slow and a wrong-body endpoint."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="status: ok")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="status: ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    return await serve_app(app)


@pytest.mark.parametrize(
    ("path", "options", "status", "message"),
    [
        ("/ok", {}, "up", "status 200"),
        ("/ok", {"expect_body": "status: ok"}, "up", "status 200"),
        ("/ok", {"expect_body": "healthy"}, "down", "body lacks"),
        ("/broken", {}, "down", "status 500, expected 200"),
        ("/broken", {"expect_status": 500}, "up", "status 500"),
        ("/slow", {"degraded_ms": 100}, "degraded", "slow"),
        ("/slow", {"timeout_s": 0.1}, "down", "no answer within 0.1 s"),
        ("/missing", {}, "down", "status 404"),
    ],
)
async def test_http_probe_reports_status_latency_and_reason(
    target: str, path: str, options: dict[str, Any], status: str, message: str
) -> None:
    probe = ProbeConfig(name="order-api", kind="http", target=target + path, **options)
    async with aiohttp.ClientSession() as session:
        health = await check_http(probe, session, "collector")
    assert (health.component, health.status) == ("order-api", status)
    assert message in (health.message or "")
    assert health.latency_ms is not None and health.latency_ms >= 0


async def test_http_probe_of_a_closed_port_is_down() -> None:
    probe = ProbeConfig(name="crm", target=f"http://127.0.0.1:{closed_port()}/health")
    async with aiohttp.ClientSession() as session:
        health = await check_http(probe, session, "collector")
    assert health.status == "down" and "request failed" in (health.message or "")


async def test_tcp_probe_is_up_on_a_listening_port_and_down_on_a_closed_one(target: str) -> None:
    port = target.rsplit(":", 1)[1]
    up = await check_tcp(ProbeConfig(name="ivr", kind="tcp", target=f"127.0.0.1:{port}"), "c")
    down = await check_tcp(
        ProbeConfig(name="ivr", kind="tcp", target=f"127.0.0.1:{closed_port()}"), "c"
    )
    assert (up.status, up.message) == ("up", "connected")
    assert down.status == "down" and "connect failed" in (down.message or "")


async def test_configured_probes_and_the_heartbeat_emit_events_on_their_own(
    start_collector: StartCollector, redis_url: str, target: str, data_dir: Path
) -> None:
    config = Config(
        data_dir=str(data_dir),
        collector=CollectorConfig(heartbeat_interval_s=0.1, source="collector-hz"),
        probes=(
            ProbeConfig(name="order-api", target=f"{target}/ok", interval_s=0.1),
            ProbeConfig(name="ivr", kind="tcp", target=f"127.0.0.1:{closed_port()}",
                        interval_s=0.1),
        ),
    )  # fmt: skip
    running = await start_collector(redis_url, config=config, background=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = await all_events(running.redis)
        seen = {(e.type, getattr(e, "component", None), getattr(e, "status", None)) for e in events}
        if {("heartbeat", None, None), ("health", "order-api", "up"),
                ("health", "ivr", "down")} <= seen:  # fmt: skip
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"probe events missing: {seen}")
    assert {e.source for e in events} == {"collector-hz"}
