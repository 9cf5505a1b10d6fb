"""The acknowledge link endpoint: a forged, expired or reused link acknowledges nothing;
opening the link (GET) only shows the confirm page; POST acknowledges as the paged person."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.playbooks.helpers import RecordingAudit
from watchfloor.api.app import create_app
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.ack_links import load_ack_key, make_token


async def _stack(redis_client: Any, serve_app: Any, data_dir: Path) -> tuple[str, Any, Any, str]:
    config = load_config(f'data_dir = "{data_dir}"\n')
    incidents = IncidentStore(redis_client)
    audit = RecordingAudit()
    app = create_app(config, redis_client, incidents=incidents, audit=audit)  # type: ignore[arg-type]
    base = await serve_app(app)
    opened = await incidents.create_manual(
        title="Order API down", severity="critical", subject="order-api", actor="test"
    )
    return base, incidents, audit, opened.id


async def test_link_acknowledges_once_as_the_paged_person(
    redis_client: Any, serve_app: Any, data_dir: Path
) -> None:
    base, incidents, audit, incident_id = await _stack(redis_client, serve_app, data_dir)
    token = make_token(load_ack_key(data_dir), incident_id, "张伟", "oncall", time.time() + 60)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/ack/{token}") as resp:
            assert resp.status == 200 and "Acknowledge as 张伟" in await resp.text()
        assert (await incidents.get(incident_id)).state == "open"
        async with http.post(f"{base}/v1/ack/{token}") as resp:
            assert resp.status == 200
        async with http.post(f"{base}/v1/ack/{token}") as resp:
            assert resp.status == 410
    incident = await incidents.get(incident_id)
    assert (incident.state, incident.acknowledged_by) == ("acknowledged", "张伟")
    assert [(r["actor"], r["role"], r["action"], r["outcome"]) for r in audit.records] == [
        ("张伟", "oncall", "incident.ack", "ok")
    ]


async def test_forged_expired_and_garbled_links_acknowledge_nothing(
    redis_client: Any, serve_app: Any, data_dir: Path
) -> None:
    base, incidents, audit, incident_id = await _stack(redis_client, serve_app, data_dir)
    key = load_ack_key(data_dir)
    forged = make_token(b"not-the-key", incident_id, "x", "oncall", time.time() + 60)
    expired = make_token(key, incident_id, "x", "oncall", time.time() - 1)
    async with aiohttp.ClientSession() as http:
        for token, word in ((forged, "signature"), (expired, "expired"), ("abc", "not an")):
            for method in ("GET", "POST"):
                async with http.request(method, f"{base}/v1/ack/{token}") as resp:
                    assert resp.status == 403, (token, method)
                    assert word in await resp.text()
    assert (await incidents.get(incident_id)).state == "open"
    assert audit.records == []


async def test_link_to_an_incident_already_acknowledged_answers_409(
    redis_client: Any, serve_app: Any, data_dir: Path
) -> None:
    base, incidents, audit, incident_id = await _stack(redis_client, serve_app, data_dir)
    await incidents.acknowledge(incident_id, actor="duty")
    token = make_token(load_ack_key(data_dir), incident_id, "李娜", "backup", time.time() + 60)
    async with aiohttp.ClientSession() as http, http.post(f"{base}/v1/ack/{token}") as resp:
        assert resp.status == 409
    assert (await incidents.get(incident_id)).acknowledged_by == "duty"
    assert [(r["actor"], r["outcome"]) for r in audit.records] == [("李娜", "conflict")]
