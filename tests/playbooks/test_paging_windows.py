"""Maintenance windows: a silence scheduled ahead (``starts_at``) is listed and can be
expired before it starts (the pager holds pages for silenced incidents: test_paging)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.playbooks.helpers import RecordingAudit
from watchfloor.api.app import create_app
from watchfloor.core.config import load_config
from watchfloor.monitor.silences import SilenceStore

ADMIN = "admin-token-for-windows"


async def test_window_scheduled_ahead_is_listed_and_expired_before_it_starts(
    redis_client: Any, serve_app: Any, data_dir: Path
) -> None:
    config = load_config(f'data_dir = "{data_dir}"\n')
    audit = RecordingAudit()
    api = await serve_app(create_app(config, redis_client, audit=audit, admin_token=ADMIN))  # type: ignore[arg-type]
    starts = time.time() + 3600
    headers = {"Authorization": f"Bearer {ADMIN}"}
    body = {"matchers": {"subject": "order-api"}, "duration_s": 1800,
            "reason": "nightly release", "starts_at": starts}  # fmt: skip
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{api}/v1/silences", json=body) as resp:
            assert resp.status == 201, await resp.text()
            window = await resp.json()
        assert (window["starts_at"], window["ends_at"]) == (starts, starts + 1800)
        async with http.get(f"{api}/v1/silences") as resp:
            assert [s["id"] for s in (await resp.json())["silences"]] == [window["id"]]
        assert await SilenceStore(redis_client).list(active_at=starts - 60) != []
        async with http.delete(f"{api}/v1/silences/{window['id']}") as resp:
            assert resp.status == 200
        async with http.get(f"{api}/v1/silences") as resp:
            assert (await resp.json())["silences"] == []
        for bad in ("tomorrow", time.time() - 3600, time.time() + 90 * 86400):
            async with http.post(f"{api}/v1/silences", json={**body, "starts_at": bad}) as resp:
                assert resp.status == 400
                assert "starts_at" in (await resp.json())["error"]
    assert [r["action"] for r in audit.records] == ["silence.create", "silence.expire"]
