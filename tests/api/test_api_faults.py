"""The monitor API while its Redis is down, and after it comes back."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from tests.api.test_api_support import start_api


async def resolved_on(ws, incident_id: str, timeout: float = 5.0) -> bool:
    """Whether the incident shows up resolved, by a change or by a (resync) snapshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads((await ws.receive(timeout=timeout)).data)
        if message["type"] == "change" and message["data"].get("id") == incident_id:
            return message["data"]["state"] == "resolved"
        listed = [i["id"] for i in message.get("incidents", [])]
        if message["type"] == "snapshot" and incident_id not in listed:
            return True  # a snapshot lists open incidents only
    return False


async def test_a_redis_outage_is_503_not_500_and_the_api_recovers(
    private_redis, serve_app, data_dir
):
    stack, redis = await start_api(private_redis.url, serve_app, data_dir, live_ping_s=0.2)
    try:
        inc = (await stack.fire()).id
        ws = await stack.session.ws_connect(stack.url + "/v1/live", headers=stack.headers("viewer"))
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"

        private_redis.stop()  # a clean stop: what was written stays (fsync policy aside)
        for method, path, role in [("GET", "/v1/incidents", "viewer"),
                                   ("POST", f"/v1/incidents/{inc}/ack", "duty_manager"),
                                   ("GET", "/healthz", None)]:  # fmt: skip
            status, body = await stack.call(method, path, role)
            assert status == 503, (path, body)
            assert body.get("error") or body.get("status") == "down"
        message = await ws.receive(timeout=10)  # the live socket is told to come back later
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

        private_redis.start()
        deadline = time.monotonic() + 10
        while (await stack.call("GET", "/healthz", None))[0] != 200:
            assert time.monotonic() < deadline, "the API did not recover"
            await asyncio.sleep(0.1)
        assert (await stack.call("POST", f"/v1/incidents/{inc}/ack", "duty_manager"))[0] == 200
        ws = await stack.session.ws_connect(stack.url + "/v1/live", headers=stack.headers("viewer"))
        first = await ws.receive(timeout=5)
        assert first.type == aiohttp.WSMsgType.TEXT, (first, ws.close_code)
        snapshot = json.loads(first.data)
        assert snapshot["incidents"][0]["state"] == "acknowledged"
        await stack.call("POST", f"/v1/incidents/{inc}/resolve", "duty_manager")
        assert await resolved_on(ws, inc), "the resolution never reached the live client"
        await ws.close()
    finally:
        await stack.session.close()
        await redis.aclose()


async def test_a_redis_outage_logs_one_line_when_it_starts_and_one_when_it_ends(
    private_redis, serve_app, data_dir, caplog
):
    stack, redis = await start_api(private_redis.url, serve_app, data_dir, live_ping_s=0.2)
    requests = [("GET", "/v1/incidents", "viewer"), ("GET", "/v1/runs", "viewer"),
                ("POST", "/v1/incidents", "duty_manager"), ("GET", "/v1/queues", "viewer"),
                ("GET", "/healthz", None), ("GET", "/v1/incidents", None)]  # fmt: skip
    try:
        inc = (await stack.fire()).id
        assert (await stack.call("GET", "/v1/incidents", "viewer"))[0] == 200
        caplog.clear()
        private_redis.stop()
        for _ in range(5):
            for method, path, role in requests:
                body = (
                    {"title": "t", "severity": "minor", "subject": "s"}
                    if method == "POST"
                    else None
                )
                status, _ = await stack.call(method, path, role, body=body)
                assert status in (401, 503), (path, status)
        down = [r for r in caplog.records if r.levelno >= logging.WARNING
                and not r.getMessage().startswith("authentication failed")]  # fmt: skip
        private_redis.start()
        deadline = time.monotonic() + 10
        while (await stack.call("GET", f"/v1/incidents/{inc}", "viewer"))[0] != 200:
            assert time.monotonic() < deadline, "the API did not recover"
            await asyncio.sleep(0.1)
        for method, path, role in requests[:2]:
            assert (await stack.call(method, path, role))[0] == 200
    finally:
        await stack.session.close()
        await redis.aclose()
    lines = [f"{r.name}: {r.getMessage()[:120]}" for r in down]
    assert not [r for r in down if r.exc_info], lines  # no tracebacks
    assert len(down) <= 3, lines  # the API's "down" line (and the live hub's), not one a request
    back = [r for r in caplog.records if "back" in r.getMessage() or "recovered" in r.getMessage()]
    assert back, "no line says Redis is back"
