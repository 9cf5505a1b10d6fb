"""The peers benchmark's Alertmanager: the real binary starts on loopback, answers ready and
delivers a posted alert to a webhook on 127.0.0.1; stopping it ends the process and its files."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

from aiohttp import web

from bench.alertmanager import find_or_fetch, start, webhook_config


async def test_alertmanager_starts_ready_and_delivers_an_alert_to_a_webhook(serve_app) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    base = await serve_app(app)
    binary = find_or_fetch()
    config = webhook_config(f"{base}/hook", group_wait="0s", group_by="subject")
    proc = await asyncio.to_thread(start, config, binary=binary)
    try:
        assert proc.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{proc.url}/-/ready", timeout=5) as answer:
            assert answer.status == 200
        alert = [{"labels": {"alertname": "Down", "subject": "order-api"}}]
        request = urllib.request.Request(
            f"{proc.url}/api/v2/alerts",
            data=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        posted = await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
        assert posted.status == 200
        body = await asyncio.wait_for(received.get(), timeout=5)
        assert body["status"] == "firing"
        assert [a["labels"]["subject"] for a in body["alerts"]] == ["order-api"]
    finally:
        proc.stop()
    assert proc.poll() is not None
    assert not proc.workdir.exists()


def test_a_stopped_alertmanager_no_longer_answers() -> None:
    proc = start(webhook_config("http://127.0.0.1:9/hook"))
    proc.stop()
    started = time.monotonic()
    try:
        urllib.request.urlopen(f"{proc.url}/-/ready", timeout=1)
        answered = True
    except OSError:
        answered = False
    assert not answered, f"still answering {time.monotonic() - started:.1f} s after stop()"
